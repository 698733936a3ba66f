/* tsc.h: ordered reads of the x86 time-stamp counter, shared by the native helpers. */
#ifndef KVMTRACE_TSC_H
#define KVMTRACE_TSC_H
#include <stdint.h>

/* Reads the TSC with LFENCE on both sides, so that the read is neither hoisted above earlier
 * instructions nor overtaken by later ones (Intel SDM vol. 2, RDTSC; AMD documents the same with
 * LFENCE made dispatch-serialising by the kernel). Returns cycles. */
static inline uint64_t tsc_read(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

#endif
