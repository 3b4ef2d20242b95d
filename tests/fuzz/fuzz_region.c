/*
 * fuzz_region.c — libFuzzer target for the region directory loader, the boundary where an operator-edited file
 * (region.yaml) becomes the keys and nodes every alert is checked against.  Any bytes must come back as a directory
 * or as an error naming file:line:column; never a crash, a leak or unbounded work.
 *
 * Seeds: tests/fuzz/corpus/region/ (valid regions and typical mistakes).
 */
#include <stddef.h>
#include <stdint.h>

#include "directory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xba_error err;
	struct directory *dir = directory_load_buffer("fuzz.yaml", (const char *)data, size, &err);

	if (dir != NULL) {
		/* Walk what was built so the fuzzer also exercises the lookups on it. */
		for (size_t i = 0; i < dir->n_nodes; i++) {
			const struct dir_node *node = &dir->nodes[i];

			if (directory_node(dir, node->id) != node ||
			    directory_node_by_curve(dir, node->curve_public) != node)
				__builtin_trap();
			for (size_t k = 0; k < node->n_neighbours; k++)
				if (!directory_are_neighbours(dir, &dir->nodes[node->neighbours[k]], node))
					__builtin_trap();
		}
		for (size_t k = 0; k < dir->n_keys; k++)
			if (directory_key(dir, dir->keys[k].key_id) != &dir->keys[k])
				__builtin_trap();
		directory_free(dir);
	}
	return 0;
}
