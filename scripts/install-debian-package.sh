# Sourced by scripts/ensure-*.sh: install a Debian package when we may, and the CI rule.

# install_debian_package PACKAGE WHAT [apt-get install options...]: as root, or through sudo
# when it needs no password; returns non-zero when it could not.
install_debian_package() {
    local package=$1 what=$2
    shift 2
    local sudo=()
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "$package is missing and cannot be installed here (neither root nor passwordless sudo):" \
                 "install it, e.g. sudo apt-get install $package" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$package is missing and there is no apt-get here: install it by hand" >&2
        return 1
    fi
    echo "installing $package (Debian package) for $what ..."
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$package" >/dev/null
}

# fail_in_ci WHY WHICH-TESTS: exit 1 in CI (CI=true), else warn that those tests will skip.
fail_in_ci() {
    case "${CI:-}" in
        1|true|TRUE|True|yes)
            echo "$1: in CI this fails the run (the tests would fail too, not skip)" >&2
            exit 1 ;;
    esac
    echo "$1: $2 will be skipped" >&2
}
