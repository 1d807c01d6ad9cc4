// SPDX-License-Identifier: GPL-2.0
/*
 * bench/crc32c.sh: the crc32c of bcache_rs's data checksums (the crc32
 * instruction in a loop, as rust/bcache_rs/bcache_rs_c.c computes it) on
 * the host, natively: what verifying a 4 KiB hit costs on this CPU without
 * QEMU's emulation of the instruction (TCG calls a helper for each one).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
static uint32_t crc_loop(uint32_t crc, const uint8_t *p, unsigned len) {
	uint64_t c = crc;
	for (; len >= 8; len -= 8, p += 8) { uint64_t v; memcpy(&v, p, 8); __asm__("crc32q %1, %0" : "+r"(c) : "rm"(v)); }
	crc = c;
	for (; len; len--, p++) __asm__("crc32b %1, %0" : "+r"(crc) : "rm"(*p));
	return crc;
}
/* Four blocks of len bytes (a multiple of 8) from p, four chains interleaved (as the module does for blocks of a segment). */
static void crc_x4(const uint8_t *p, unsigned len, uint32_t out[4]) {
	uint64_t a = ~0u, b = ~0u, c = ~0u, d = ~0u, v;
	for (unsigned i = 0; i < len; i += 8) {
		memcpy(&v, p + i, 8); __asm__("crc32q %1, %0" : "+r"(a) : "rm"(v));
		memcpy(&v, p + len + i, 8); __asm__("crc32q %1, %0" : "+r"(b) : "rm"(v));
		memcpy(&v, p + 2 * len + i, 8); __asm__("crc32q %1, %0" : "+r"(c) : "rm"(v));
		memcpy(&v, p + 3 * len + i, 8); __asm__("crc32q %1, %0" : "+r"(d) : "rm"(v));
	}
	out[0] = a; out[1] = b; out[2] = c; out[3] = d;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
	static uint8_t buf[1 << 20];
	for (unsigned i = 0; i < sizeof buf; i++) buf[i] = i * 7 + 3;
	if (~crc_loop(~0u, (const uint8_t *)"123456789", 9) != 0xe3069283) { puts("bad crc"); return 1; }
	for (int bs = 512; bs <= 4096; bs *= 8) {
		volatile uint32_t sink = 0; int iters = 20000; double t0 = now();
		for (int it = 0; it < iters; it++)
			for (unsigned off = 0; off < 4096; off += bs) sink ^= crc_loop(~0u, buf + (it % 256) * 4096 + off, bs);
		double t = (now() - t0) / iters;
		printf("crc32c of 4 KiB in blocks of %d B: %.0f ns (%.2f GB/s)\n", bs, t * 1e9, 4096 / t / 1e9);
	}
	{
		uint32_t four[4];
		crc_x4(buf, 512, four);
		for (int k = 0; k < 4; k++)
			if (four[k] != crc_loop(~0u, buf + 512 * k, 512)) { puts("bad interleaved crc"); return 1; }
		volatile uint32_t sink = 0; int iters = 20000; double t0 = now();
		for (int it = 0; it < iters; it++)
			for (unsigned off = 0; off < 4096; off += 2048) { crc_x4(buf + (it % 256) * 4096 + off, 512, four); sink ^= four[0] ^ four[3]; }
		double t = (now() - t0) / iters;
		printf("crc32c of 4 KiB in blocks of 512 B, four interleaved: %.0f ns (%.2f GB/s)\n", t * 1e9, 4096 / t / 1e9);
	}
	return 0;
}
