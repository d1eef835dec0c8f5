"""Monitoring: drift between the champion's training data and new data.

    reference.summarise(train, features, ...)      -> Reference   (once, at training time)
    reference.load_reference(uri, name, version)   -> Reference   (the artifact of a version)
    drift.detect(reference, current, spec)          -> DriftReport
    api.monitor(spec, data=... | last=... | rows=...) -> MonitorResult   (`looml monitor`)

This package's `__init__` imports nothing: `looml.monitor` (the function in `looml`) and this
package share a name, and `looml/__init__.py` binds the function after importing the package.
Import the modules by their full names (`from looml.monitor.drift import detect`).
"""
