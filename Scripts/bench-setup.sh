# Sourced (never run) by Scripts/bench-registry and Scripts/bench-stages, which compare Cairn
# with peers installed from PyPI: the release build they measure, one venv for the peers, and
# what the report says of the commit. Expects $root (the repository) and the working directory there.
#
#   bench_python_venv "the GTO column" || no_gto=true   # python3 can make venvs (installs python3-venv if not)
#   bench_build                                          # release cairn and cairn-bench; sets $bin
#   bench_install gto 'import gto.api'                   # into $venv, unless the import already works
#   bench_version gto                                    # the installed package's version
#   bench_commit                                         # the commit measured, "with local changes" if so

say() { echo "[bench] $*" >&2; }

cache="${CAIRN_BENCH_CACHE:-$root/.build}"
venv="$cache/bench-registry-venv"
log="$cache/bench-registry-venv-install.log"

# python3 comes with Scripts/setup; the venv module is a package of its own on Debian.
bench_python_venv() {   # bench_python_venv WHAT-IS-SKIPPED-WITHOUT-IT
  python3 -c 'import ensurepip, venv' 2>/dev/null && return 0
  say "installing python3-venv (apt)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null \
    && return 0
  say "could not install python3-venv; $1 will be skipped"
  return 1
}

# Measured as it would be deployed, and in one build directory for every benchmark script:
# release, with the Swift runtime linked in statically, which starts each `cairn` process sooner.
# Only the two products are built: a dependency's dynamic library (GRDB's) does not link
# against the static runtime.
bench_build() {
  local build=(swift build -c release --static-swift-stdlib --scratch-path .build/static)
  say "building release cairn and cairn-bench (${build[*]}; a first build takes many minutes)"
  for product in cairn cairn-bench; do
    "${build[@]}" --product "$product" 2>&1 \
      | awk '/^\[[0-9]+\/[0-9]+\]/ { if (++n % 40 == 1) print "[bench]   " $0; fflush(); next } { print; fflush() }' >&2
  done
  bin="$("${build[@]}" --show-bin-path)"
}

# One venv for every peer; each is installed on its own, so one that fails does not take the others.
bench_install() {   # bench_install PACKAGE CHECK: pip-installs PACKAGE unless CHECK (a Python import) already works
  local package="$1" check="$2"
  mkdir -p "$cache"
  if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" >>"$log" 2>&1; then
    say "could not make a venv in $venv (see $log)"
    return 1
  fi
  "$venv/bin/python" -c "$check" >/dev/null 2>&1 && return 0
  say "installing $package from PyPI into $venv (a minute or two; log: $log)"
  "$venv/bin/pip" install --progress-bar off "$package" 2>&1 | tee -a "$log" \
    | awk '/^Collecting/ { if (++n % 20 == 1) print "[bench]   pip: " $0 }
           /^Successfully installed/ { print "[bench]   pip: installed " NF - 2 " packages" }
           /^ERROR/ { print "[bench]   pip: " $0 } { fflush() }' >&2
  "$venv/bin/python" -c "$check" >/dev/null 2>&1
}

bench_version() {   # bench_version PACKAGE
  "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"
}

bench_commit() {
  local commit
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git diff --quiet HEAD 2>/dev/null || commit="$commit with local changes"
  echo "$commit"
}
