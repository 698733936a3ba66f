/*
 * probench: the tracing-overhead benchmark of the classic kvmtrace recipe, redone.
 *
 *   probench [-n ITERATIONS] [-r ROUNDS] [-m TRACE_MARKER] MODE...
 *
 * Modes (each measured as ns per call over ITERATIONS calls, ROUNDS times):
 *   empty       a call of an empty, non-inlined function
 *   rdtsc       one RDTSC
 *   getpid      the getpid system call (through syscall(), never a cached value)
 *   marker      a 16-byte write to TRACE_MARKER (an ftrace trace_marker; open it in your own instance)
 *   uprobe      a call of probench_uprobe_target(), whose first instruction (push %rbp) a uprobe emulates
 *   uprobe-xol  a call of probench_uprobe_xol_target(), whose first instruction (lea) a uprobe single-steps
 *   uprobe-args a call of probench_uprobe_args_target(a, b, str), for a uprobe that fetches its arguments
 * The uprobe modes only call the functions: place the uprobes first (or they measure a plain call).
 *
 * Output, one line per mode (for `kvmtrace bench overhead`, which places the uprobes itself):
 *   probench mode=MODE iterations=N rounds=R best_ns=B median_ns=M
 * B and M are ns per call with three decimals; best is the fastest round, median the middle one.
 * Exit status: 0 on success, 1 on a usage error, 2 when the marker cannot be opened or written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 101

/* Keep the compiler from removing the calls or merging the loops. */
static volatile uint64_t sink;

__attribute__((noinline, used)) void probench_empty(void)
{
	__asm__ __volatile__("" ::: "memory");
}

/*
 * The uprobe targets are written in assembly so that their first instruction, where the uprobe
 * sits, does not depend on the compiler or its flags. That instruction decides the cost: x86
 * uprobes emulate `push %rbp` (the usual frame-pointer prologue) after the breakpoint trap, but
 * must single-step most other instructions out of line, which costs a second trap.
 */
#define U __attribute__((unused))

/* push %rbp first: the uprobe emulates it (one trap per hit). */
__attribute__((naked, noinline, used)) long probench_uprobe_target(U long a)
{
	__asm__("push %rbp\n\tmov %rsp, %rbp\n\tlea 1(%rdi), %rax\n\tpop %rbp\n\tret\n");
}

/* lea first: the uprobe single-steps it out of line (a breakpoint and a debug trap per hit). */
__attribute__((naked, noinline, used)) long probench_uprobe_xol_target(U long a)
{
	__asm__("lea 1(%rdi), %rax\n\tret\n");
}

/* push %rbp first, for a uprobe that fetches a, b and the string s. */
__attribute__((naked, noinline, used)) long probench_uprobe_args_target(U long a, U long b, U const char *s)
{
	__asm__("push %rbp\n\tmov %rsp, %rbp\n\tmovsbq (%rdx), %rax\n\tadd %rsi, %rax\n\tadd %rdi, %rax\n"
		"\tpop %rbp\n\tret\n");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int marker_fd = -1;
static const char marker_text[] = "probench marker\n"; /* 16 bytes */

/* One round of a mode: the time of n calls in ns, or 0 when a write failed. */
static uint64_t round_ns(const char *mode, long n)
{
	uint64_t t0 = now_ns();
	if (!strcmp(mode, "empty")) {
		for (long i = 0; i < n; i++) probench_empty();
	} else if (!strcmp(mode, "rdtsc")) {
		uint64_t s = 0;
		for (long i = 0; i < n; i++) s += rdtsc();
		sink = s;
	} else if (!strcmp(mode, "getpid")) {
		long s = 0;
		for (long i = 0; i < n; i++) s += syscall(SYS_getpid);
		sink = (uint64_t)s;
	} else if (!strcmp(mode, "marker")) {
		for (long i = 0; i < n; i++)
			if (write(marker_fd, marker_text, sizeof marker_text - 1) < 0) return 0;
	} else if (!strcmp(mode, "uprobe")) {
		long s = 0;
		for (long i = 0; i < n; i++) s += probench_uprobe_target(i);
		sink = (uint64_t)s;
	} else if (!strcmp(mode, "uprobe-xol")) {
		long s = 0;
		for (long i = 0; i < n; i++) s += probench_uprobe_xol_target(i);
		sink = (uint64_t)s;
	} else { /* uprobe-args */
		long s = 0;
		for (long i = 0; i < n; i++) s += probench_uprobe_args_target(i, 42, "probench");
		sink = (uint64_t)s;
	}
	return now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: probench [-n ITERATIONS] [-r ROUNDS] [-m TRACE_MARKER] MODE...\n"
		   "  modes: empty rdtsc getpid marker uprobe uprobe-xol uprobe-args\n"
		   "  -n N  calls per round (default 100000)\n"
		   "  -r R  rounds, 1..%d (default 7); best and median are printed\n"
		   "  -m F  the trace_marker the marker mode writes to\n", MAX_ROUNDS);
}

static int known(const char *m)
{
	static const char *modes[] = { "empty", "rdtsc", "getpid", "marker", "uprobe", "uprobe-xol", "uprobe-args" };
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (!strcmp(m, modes[i])) return 1;
	return 0;
}

int main(int argc, char **argv)
{
	long n = 100000;
	int rounds = 7, opt;
	const char *marker = NULL;
	while ((opt = getopt(argc, argv, "n:r:m:h")) != -1) {
		switch (opt) {
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'r': rounds = atoi(optarg); break;
		case 'm': marker = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (n <= 0 || rounds < 1 || rounds > MAX_ROUNDS || optind >= argc) {
		usage(stderr);
		return 1;
	}
	for (int i = optind; i < argc; i++) {
		if (!known(argv[i])) {
			fprintf(stderr, "probench: unknown mode \"%s\"\n", argv[i]);
			usage(stderr);
			return 1;
		}
		if (!strcmp(argv[i], "marker") && marker_fd < 0) {
			if (!marker) {
				fprintf(stderr, "probench: the marker mode needs -m TRACE_MARKER\n");
				return 1;
			}
			marker_fd = open(marker, O_WRONLY | O_CLOEXEC);
			if (marker_fd < 0) {
				fprintf(stderr, "probench: cannot open %s: %s\n", marker, strerror(errno));
				return 2;
			}
		}
	}
	for (int i = optind; i < argc; i++) {
		const char *mode = argv[i];
		uint64_t t[MAX_ROUNDS];
		round_ns(mode, n / 10 + 1); /* warm caches, page in, let the first uprobe hit settle */
		for (int r = 0; r < rounds; r++) {
			t[r] = round_ns(mode, n);
			if (t[r] == 0) {
				fprintf(stderr, "probench: write to %s failed: %s\n", marker, strerror(errno));
				return 2;
			}
		}
		qsort(t, rounds, sizeof t[0], cmp_u64);
		printf("probench mode=%s iterations=%ld rounds=%d best_ns=%.3f median_ns=%.3f\n", mode, n, rounds,
		       (double)t[0] / n, (double)t[rounds / 2] / n);
		fflush(stdout);
	}
	return 0;
}
