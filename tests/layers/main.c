/* The layer check (CMakeLists.txt, docs/architecture.md "Layers"): this empty program
 * is linked with one layer's library whole and only the layers that layer may use.
 * An "undefined reference" while linking layer_check_X means a file of layer X calls
 * into a layer it must not: move the function down, or pass a callback. */
int main(void)
{
	return 0;
}
