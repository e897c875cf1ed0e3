# Shared by deploy/gcp/*.sh (sourced): messages, and the command line read the same way.
#
# Every option has an environment variable of the same meaning (the script sets the defaults
# first); an option given on the command line wins. `--name VALUE` and `--name=VALUE` both work,
# a flag takes no value, and anything unknown stops the script with exit status 2.

SCRIPT_NAME="${0##*/}"

die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit "${EXIT_CODE:-1}"; }
log() { printf '==> %s\n' "$*" >&2; }

# parse_options "OPTION=VARIABLE ..." "FLAG=VARIABLE ..." "$@"
#   Sets VARIABLE to each option's value, and to 1 for each flag given; -h/--help calls `usage`.
parse_options() {
  local options=" ${1//$'\n'/ } " flags=" ${2//$'\n'/ } " option value variable
  shift 2
  while [[ $# -gt 0 ]]; do
    option="$1"
    case "$option" in
      -h|--help) usage; exit 0 ;;
      --*=*) value="${option#*=}"; option="${option%%=*}"; shift
             [[ "$flags" != *" $option="* ]] || EXIT_CODE=2 die "$option takes no value" ;;
      --*) if [[ "$flags" == *" $option="* ]]; then value=1; shift
           else [[ $# -ge 2 ]] || EXIT_CODE=2 die "$option needs a value"; value="$2"; shift 2; fi ;;
      *) EXIT_CODE=2 die "unexpected argument '$option' (see --help)" ;;
    esac
    variable="${options##* "$option"=}"
    [[ "$variable" != "$options" ]] || variable="${flags##* "$option"=}"
    [[ "$variable" != "$flags" ]] || EXIT_CODE=2 die "unknown option $option (see --help)"
    printf -v "${variable%% *}" '%s' "$value"
  done
}
