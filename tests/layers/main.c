/* The layer check (CMakeLists.txt, docs/architecture.md "Layers"): this empty program
 * is linked with one layer's library whole and only the layers that layer may use.
 * An "undefined reference" while linking layer_check_X means a file of the library the
 * linker names (libroostX.a or a layer below it) calls into a layer it must not use:
 * move the function down, or pass a callback (tests/layers/link.sh says the rule). */
int main(void)
{
	return 0;
}
