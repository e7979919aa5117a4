# Sourced by script/setup and script/in-newest: where the newest Home Assistant's Python lives.
#
# Home Assistant's newest releases need Python >= 3.14.2. A machine that has one uses it. Debian
# 12 and 13 have none, and Debian forky's source packages are not served, but its binary packages
# are: script/setup then builds a minimal forky root (debootstrap, about 40 s) outside the
# repository and runs the newest suite inside it with the working tree bind-mounted at the same
# path, so that `.venv-newest` works the same from either side.

NEWEST_MIN_PYTHON="3.14.2"
FORKY_ROOT="${MESHBOT_FORKY_ROOT:-/opt/meshbot-forky}"
# The machine's trusted certificates, and where they appear inside the root (see in_forky_root).
HOST_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
FORKY_HOST_CA="/usr/local/share/meshbot/host-ca-certificates.crt"
# What the root holds besides the base system; the stamp records it, so a changed list rebuilds.
FORKY_PACKAGES="python3.14-venv python3.14-dev build-essential mosquitto chromium ca-certificates fonts-dejavu-core procps"

newest_host_python() {
  # A Python >= 3.14.2 of the machine itself, if there is one.
  local candidate
  for candidate in "${MESHBOT_NEWEST_PYTHON:-}" "$(command -v python3.14 || true)" \
    "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" - "$NEWEST_MIN_PYTHON" <<'PY' >/dev/null 2>&1; then
import sys, ensurepip, venv, ssl, sqlite3
minimum = tuple(int(part) for part in sys.argv[1].split("."))
sys.exit(0 if sys.version_info[:3] >= minimum else 1)
PY
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 1
}

forky_host_ca() {
  # Where the machine's certificates appear inside the root; nothing when it has none.
  if [ -e "$HOST_CA_BUNDLE" ]; then
    printf '%s' "$FORKY_HOST_CA"
  fi
}

forky_root_ready() {
  [ "$(cat "$FORKY_ROOT/.meshbot-root" 2>/dev/null)" = "$FORKY_PACKAGES" ]
}

in_forky_root() {
  # Run "$@" inside the forky root, in the working tree, with /proc, /dev (and so /dev/pts and
  # /dev/shm), /sys, the machine's name resolution and its trusted certificates (a proxy's CA
  # that this machine trusts must be trusted inside too) mounted. The mounts live in a private
  # mount namespace, so they vanish with the command however it ends: nothing is left mounted.
  # The certificates go to a path of their own, named by SSL_CERT_FILE and PIP_CERT: mounted
  # over the root's /etc/ssl/certs/ca-certificates.crt they made ca-certificates' own set-up
  # fail ("Device or resource busy" when it moves its new bundle into place).
  local tree="$PWD" host_ca
  host_ca=$(forky_host_ca)
  unshare --mount --propagation private -- /bin/sh -e -c '
    root=$1 tree=$2 host_ca=$3 host_bundle=$4
    shift 4
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    for file in /etc/resolv.conf /etc/hosts; do
      [ -e "$file" ] || continue
      [ -e "$root$file" ] || touch "$root$file"
      mount --bind "$file" "$root$file"
    done
    if [ -n "$host_ca" ]; then
      mkdir -p "$(dirname "$root$host_ca")"
      [ -e "$root$host_ca" ] || touch "$root$host_ca"
      mount --bind "$host_bundle" "$root$host_ca"
    fi
    mkdir -p "$root$tree"
    mount --bind "$tree" "$root$tree"
    exec chroot "$root" /usr/bin/env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-}" \
      DEBIAN_FRONTEND=noninteractive MESHBOT_HA=newest \
      ${host_ca:+SSL_CERT_FILE="$host_ca" PIP_CERT="$host_ca"} ${PIP_DEFAULT_TIMEOUT:+PIP_DEFAULT_TIMEOUT="$PIP_DEFAULT_TIMEOUT"} \
      ${http_proxy:+http_proxy="$http_proxy"} ${https_proxy:+https_proxy="$https_proxy"} \
      ${no_proxy:+no_proxy="$no_proxy"} \
      /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$tree" "$@"
  ' meshbot-forky "$FORKY_ROOT" "$tree" "$host_ca" "$HOST_CA_BUNDLE" "$@"
}
