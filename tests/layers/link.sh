#!/bin/sh
# Linker launcher for the layer checks (CMakeLists.txt, layer_check_LAYER): runs the
# link as CMake gives it and, when it fails, names the rule that broke.
# Usage: link.sh LAYER ALLOWED,LAYERS LINK-COMMAND...
layer=$1 allowed=$(echo "$2" | sed "s/,/, /g")
shift 2
"$@" && exit 0
status=$?
echo "layers: layer_check_$layer links libroost$layer.a whole with only the layers" \
	"$layer may use (${allowed:-none}). Each undefined reference above is a call from" \
	"the libroostLAYER.a named before it into a layer that LAYER must not use: move the" \
	"function down a layer or pass a callback (docs/architecture.md, \"Layers\")." >&2
exit $status
