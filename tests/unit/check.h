/*
 * check.h — the unit tests' assertions.  Each test file is one program with one main() that calls its test
 * functions through RUN(); a failed CHECK prints file:line and the expression, marks the test failed and goes on
 * with the next test.  The program prints "N passed, N failed" and exits non-zero on any failure, so meson
 * reports every test file by name.
 */
#ifndef XBA_CHECK_H
#define XBA_CHECK_H

#include <stdio.h>
#include <string.h>

struct check_state {
	int passed;          /* tests that ran with no failed check */
	int failed;          /* tests with at least one failed check */
	int current_failed;  /* failed checks in the running test */
};

#define CHECK(state, expr)                                                                             \
	do {                                                                                           \
		if (!(expr)) {                                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);       \
			(state)->current_failed++;                                                     \
		}                                                                                      \
	} while (0)

/* Check that an int-returning call gives the expected code; prints both on mismatch. */
#define CHECK_CODE(state, call, expected)                                                              \
	do {                                                                                           \
		int check_got_ = (call);                                                               \
		if (check_got_ != (expected)) {                                                        \
			fprintf(stderr, "%s:%d: %s returned %d, expected %d (%s)\n", __FILE__, __LINE__, \
			    #call, check_got_, (int)(expected), #expected);                            \
			(state)->current_failed++;                                                     \
		}                                                                                      \
	} while (0)

/* Check that haystack contains needle (error messages name the field or file position). */
#define CHECK_CONTAINS(state, haystack, needle)                                                        \
	do {                                                                                           \
		const char *check_h_ = (haystack);                                                     \
		if (check_h_ == NULL || strstr(check_h_, (needle)) == NULL) {                          \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,  \
			    check_h_ ? check_h_ : "(null)", (needle));                                 \
			(state)->current_failed++;                                                     \
		}                                                                                      \
	} while (0)

/* Check that two strings are equal; prints both on mismatch. */
#define CHECK_STR(state, got, want)                                                                    \
	do {                                                                                           \
		const char *check_g_ = (got), *check_w_ = (want);                                      \
		if (check_g_ == NULL || strcmp(check_g_, check_w_) != 0) {                             \
			fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #got, \
			    check_g_ ? check_g_ : "(null)", check_w_);                                 \
			(state)->current_failed++;                                                     \
		}                                                                                      \
	} while (0)

#define RUN(state, test)                                                                               \
	do {                                                                                           \
		(state)->current_failed = 0;                                                           \
		test(state);                                                                           \
		if ((state)->current_failed) {                                                         \
			fprintf(stderr, "FAIL %s\n", #test);                                           \
			(state)->failed++;                                                             \
		} else {                                                                               \
			fprintf(stderr, "ok   %s\n", #test);                                           \
			(state)->passed++;                                                             \
		}                                                                                      \
	} while (0)

static inline int
check_finish(const struct check_state *state)
{
	printf("%d passed, %d failed\n", state->passed, state->failed);
	return state->failed ? 1 : 0;
}

#endif
