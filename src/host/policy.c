/* policy: matching a path against a host's folder policies (policy.h). */
#include "policy.h"
#include "../core/json.h"

#include <stdbool.h>
#include <string.h>

enum policy policy_match(json_t *policies, const char *path)
{
	enum policy best = POL_PINNED;
	size_t best_len = 0;
	size_t i;
	json_t *p;
	json_array_foreach(policies, i, p)
	{
		const char *f = json_get_str(p, "folder"), *mode = json_get_str(p, "mode");
		size_t n = f ? strlen(f) : 0;
		bool under = f && (strcmp(f, "/") == 0 ||
		                   (strncmp(path, f, n) == 0 && (!path[n] || path[n] == '/')));
		if (!under || n < best_len)
			continue;
		best_len = n;
		best = strcmp(mode, "exclude") == 0     ? POL_EXCLUDE
		       : strcmp(mode, "on-demand") == 0 ? POL_ON_DEMAND
		                                        : POL_PINNED;
	}
	return best;
}
