# Sourced by setup.sh, test.sh and run.sh (not run on its own): the LibTorch flavour that
# INFINI_TORCH names and its default build folder. Sets FLAVOUR and BUILD_DIR (kept when given).
FLAVOUR=${INFINI_TORCH:-debian}
case "$FLAVOUR" in
  debian) BUILD_DIR=${BUILD_DIR:-build} ;;
  pip) BUILD_DIR=${BUILD_DIR:-build-torch2} ;;
  *) echo "INFINI_TORCH: expected debian or pip, found '$FLAVOUR'" >&2; exit 2 ;;
esac
