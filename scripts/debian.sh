# Sourced by the install scripts (not run on its own).
#
# install_missing_debian_packages PACKAGE...: installs those of the packages that are not
# installed yet (with sudo unless root). With DEBIAN_NO_SERVICES=1 the packages' postinst
# scripts may not start daemons (policy-rc.d exit 101), for services that tests start
# themselves.
install_missing_debian_packages() {
  local package sudo="" policy=/usr/sbin/policy-rc.d created_policy=""
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed \
      || missing+=("$package")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "${DEBIAN_NO_SERVICES:-}" = 1 ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
}
