/* Fused NAS kernel for CPU: rho = z * exp(-u) per receptive field, where x = a - max, e = exp(x),
 * z = sum e, u = sum e * x / z over the D filters, clamped to [1, D]; NaN for a field with a non-finite
 * input (as the eager path: exp(-inf) * -inf and anything with NaN are NaN and spread through u).
 *
 * Written with GCC/Clang vector types, so one source gives AVX2, SSE or NEON code: the lanes are
 * neighbouring fields of a conv layer (contiguous in memory, one filter row apart by `inner`), or the
 * filters of a linear layer. A tile of fields is read twice: once for the max, once for the sums, the
 * second time from L2, with the tile's accumulators in registers; the next tile is prefetched meanwhile.
 * exp is a table of 2^(j/8) and a cubic (1 ulp, see vexp). Without AVX (another CPU, or a compiler that rejects the flags) the same vectors compile to
 * narrower instructions or scalar code. */
#include <stdint.h>
#include <string.h>

#define LANES 8
#define VECS 2 /* vectors per tile: more spill the accumulators (16 AVX registers) and measured slower */
#define TILE (LANES * VECS)
#define SUM_BLOCK 32 /* filters (or vectors of filters, for rows) summed before a compensated add to the total */

typedef float vf __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));

int64_t nas_tile(void) { return TILE; }

static inline vf splat(float x) { return (vf){0} + x; }
static inline vf sel(vi mask, vf yes, vf no) { return (vf)((mask & (vi)yes) | (~mask & (vi)no)); }
static inline vi lane_ids(void) { return (vi){0, 1, 2, 3, 4, 5, 6, 7}; }

/* a > b ? a : b lane by lane, so b where either is NaN (the semantics of x86's maxps) */
#if defined(__AVX__)
#include <immintrin.h>
static inline vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
#else
static inline vf vmax(vf a, vf b) { return sel(a > b, a, b); }
#endif

static inline vf loadu(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* `n` < LANES floats at p; the other lanes repeat p[0], so they change no max and overflow nothing. */
static inline vf load_part(const float *p, int n) {
  vf v = splat(p[0]);
  for (int i = 1; i < n; ++i) v[i] = p[i];
  return v;
}

/* Lanes [lo, hi) of v to p + lo. */
static inline void store_part(float *p, vf v, int lo, int hi) {
  if (lo == 0 && hi == LANES) {
    memcpy(p, &v, sizeof v);
    return;
  }
  for (int i = lo; i < hi; ++i) p[i] = v[i];
}

/* 2^(j/8) for j = 0..7 as float bits, less j << 20: adding n << 20 for n = 8k + j then adds k to the
 * exponent and cancels j's bits, so one integer add builds 2^(n/8) (see vexp). */
static const int32_t exp2_eighths[LANES] = {
    0x3f800000 - (0 << 20), 0x3f8b95c2 - (1 << 20), 0x3f9837f0 - (2 << 20), 0x3fa5fed7 - (3 << 20),
    0x3fb504f3 - (4 << 20), 0x3fc5672a - (5 << 20), 0x3fd744fd - (6 << 20), 0x3feac0c7 - (7 << 20)};

/* exp2_eighths[i & 7] lane by lane: one permute on AVX2 */
static inline vi eighths(vi i) {
#if defined(__AVX2__)
  vi table;
  memcpy(&table, exp2_eighths, sizeof table);
  return (vi)_mm256_permutevar8x32_epi32((__m256i)table, (__m256i)i);
#else
  vi out;
  for (int k = 0; k < LANES; ++k) out[k] = exp2_eighths[i[k] & 7];
  return out;
#endif
}

/* exp(x) for x <= 88 to about 1 ulp, NaN for NaN: exp(x) = 2^(n/8) * 2^(f/8) with n = round(8 x / ln 2)
 * and f in [-1/2, 1/2], 2^(n/8) from a table of eighths and an exponent add, 2^(f/8) a cubic (minimax,
 * 0.8 ulp in float arithmetic). Fewer multiply-adds than one polynomial over [-ln 2 / 2, ln 2 / 2], which
 * needs degree 6 for the same accuracy: the kernel is bound by them. n is rounded by adding 1.5 * 2^23,
 * whose float bits then hold n in their low bits, so the table index is those bits. At and below -88,
 * n = -1016 and 2^(n/8)'s bits are 0: exactly 0, so exp(-inf) * -inf is NaN as in the eager path. The
 * rounded 8 / ln 2 makes it exp(x (1 + 1.3e-8)): below 5e-9 of a sum whose largest term is 1. */
static inline vf vexp(vf x) {
  const float magic = 12582912.0f, scale = 11.5415603271117f; /* 1.5 * 2^23, 8 / ln 2 */
  x = vmax(splat(-88.0f), x);
  vf t = x * scale + magic;
  vf f = x * scale - (t - magic);
  vf p = splat(0.05549890175461769f / 512.0f);
  p = p * f + 0.24026407301425934f / 64.0f;
  p = p * f + 0.6931471824645996f / 8.0f;
  p = p * f + 1.0f;
  return p * (vf)(eighths((vi)t) + ((vi)t << 20));
}

/* *sum += b, the rounding error of that add kept in *err (Knuth's TwoSum: exact for any magnitudes, no
 * branch). The totals are sums of SUM_BLOCK-term blocks: with plain float adds, terms below half an ulp of
 * a grown total are lost, and rho's error grows with D (2.5e-4 at D = 10^6 for a row of randn * 4, against
 * 3e-7 to 7e-7 for eager float32 and for these sums). */
static inline void add_compensated(vf *sum, vf *err, vf b) {
  vf s = *sum + b, bp = s - *sum;
  *err += (*sum - (s - bp)) + (b - bp);
  *sum = s;
}

/* rho from z and t = sum e x, clamped to [1, d], or with `as_nas` the NAS 1 - rho / d (in float, as
 * torch computes it from rho: the same bits); NaN (through t) stays NaN. */
static inline vf finish(vf z, vf t, float d, int64_t as_nas) {
  vf rho = z * vexp(-(t / z));
  rho = sel(rho < 1.0f, splat(1.0f), rho);
  rho = sel(rho > d, splat(d), rho);
  return as_nas ? 1.0f - rho / d : rho;
}

/* Where a span of LANES fields starting at field p of `inner` is read and which of its lanes are new:
 * the last span of a row of fields is moved back to end at `inner` (its first lanes repeat fields already
 * done), and a row of fewer than LANES fields is read in part. */
typedef struct {
  int64_t start;
  int lo, hi, part;
} span;

static inline span span_at(int64_t p, int64_t inner) {
  if (inner < LANES) return (span){0, 0, (int)inner, 1};
  int64_t start = p + LANES <= inner ? p : inner - LANES;
  return (span){start, (int)(p - start), LANES, 0};
}

static inline vf load_span(const float *row, span s) {
  return s.part ? load_part(row + s.start, s.hi) : loadu(row + s.start);
}

static inline vf load_n(const float *p, int n) { return n == LANES ? loadu(p) : load_part(p, n); }

/* The max, z and t of the fields a[0 .. nv * LANES) over the d filters of one sample (filter j at
 * a + j * inner), `n` lanes of each vector read (LANES, or fewer for a row of fewer fields). Inlined with
 * constant nv and n so that the accumulators live in registers. While the exps run, the next tile's rows
 * (`next`, same strides) are prefetched: its max pass then reads from cache, not memory (1.4x measured). */
static inline __attribute__((always_inline)) void tile_partition(const float *a, const float *next, int64_t d,
                                                                 int64_t inner, int nv, int n, vf *m, vf *z,
                                                                 vf *t) {
#pragma GCC unroll 8
  for (int k = 0; k < nv; ++k) m[k] = load_n(a + k * LANES, n);
  for (int64_t j = 1; j < d; ++j)
#pragma GCC unroll 8
    for (int k = 0; k < nv; ++k) m[k] = vmax(m[k], load_n(a + j * inner + k * LANES, n));
  vf zc[VECS], tc[VECS]; /* the rounding errors of the totals' adds (see add_compensated) */
#pragma GCC unroll 8
  for (int k = 0; k < nv; ++k) z[k] = t[k] = zc[k] = tc[k] = splat(0.0f);
  /* Sums of SUM_BLOCK filters added to the totals with compensation: one float32 sum over all d filters in
   * order is 3e-6 off in rho at d = 512; blocks and compensation keep the error that of eager float32 at
   * any d, for a few adds per block. */
  for (int64_t j0 = 0; j0 < d; j0 += SUM_BLOCK) {
    vf zb[VECS], tb[VECS];
#pragma GCC unroll 8
    for (int k = 0; k < nv; ++k) zb[k] = tb[k] = splat(0.0f);
    for (int64_t j = j0; j < j0 + SUM_BLOCK && j < d; ++j) {
      /* the first and last field of the next tile's row: two cache lines where the row is not aligned */
      __builtin_prefetch(next + j * inner, 0, 2);
      __builtin_prefetch(next + j * inner + TILE - 1, 0, 2);
#pragma GCC unroll 8
      for (int k = 0; k < nv; ++k) {
        vf x = load_n(a + j * inner + k * LANES, n) - m[k];
        vf e = vexp(x);
        zb[k] += e;
        tb[k] += e * x;
      }
    }
#pragma GCC unroll 8
    for (int k = 0; k < nv; ++k) {
      add_compensated(&z[k], &zc[k], zb[k]);
      add_compensated(&t[k], &tc[k], tb[k]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < nv; ++k) {
    z[k] += zc[k];
    t[k] += tc[k];
  }
}

static inline void store_fields(const span *s, int nv, const vf *m, const vf *z, const vf *t, float d,
                                int64_t as_nas, float *out, float *z_out, float *u_out, float *m_out) {
  for (int k = 0; k < nv; ++k) {
    store_part(out + s[k].start, finish(z[k], t[k], d, as_nas), s[k].lo, s[k].hi);
    if (z_out) {
      store_part(z_out + s[k].start, z[k], s[k].lo, s[k].hi);
      store_part(u_out + s[k].start, t[k] / z[k], s[k].lo, s[k].hi);
      store_part(m_out + s[k].start, m[k], s[k].lo, s[k].hi);
    }
  }
}

/* a: (outer, d, inner) contiguous; rho (with `as_nas`, the NAS 1 - rho / d instead), and for the
 * backward (where not NULL) z, u = sum e x / z and the max m: (outer, inner); tiles [first_tile,
 * last_tile) of TILE fields. */
void nas_strided(const float *a, float *out, float *z_out, float *u_out, float *m_out, int64_t as_nas,
                 int64_t outer, int64_t d, int64_t inner, int64_t first_tile, int64_t last_tile) {
  int64_t tiles = (inner + TILE - 1) / TILE;
  for (int64_t job = first_tile; job < last_tile && job < outer * tiles; ++job) {
    int64_t o = job / tiles, p0 = (job % tiles) * TILE;
    const float *base = a + o * d * inner;
    const float *next = job + 1 < outer * tiles ? a + (job + 1) / tiles * d * inner + (job + 1) % tiles * TILE : a;
    int64_t off = o * inner;
    float *zo = z_out ? z_out + off : 0, *uo = u_out ? u_out + off : 0, *mo = m_out ? m_out + off : 0;
    span s[VECS];
    vf m[VECS], z[VECS], t[VECS];
    if (p0 + TILE <= inner) {
      for (int k = 0; k < VECS; ++k) s[k] = span_at(p0 + k * LANES, inner);
      tile_partition(base + p0, next, d, inner, VECS, LANES, m, z, t);
      store_fields(s, VECS, m, z, t, (float)d, as_nas, out + off, zo, uo, mo);
    } else /* the part tile at the end of a row: one span at a time */
      for (int64_t p = p0; p < inner; p += LANES) {
        s[0] = span_at(p, inner);
        if (s[0].part)
          tile_partition(base, next, d, inner, 1, s[0].hi, m, z, t);
        else
          tile_partition(base + s[0].start, next, d, inner, 1, LANES, m, z, t);
        store_fields(s, 1, m, z, t, (float)d, as_nas, out + off, zo, uo, mo);
      }
  }
}

/* d rho / d a_j = scale * e_j * (u - x_j) with x = a - m, e = exp(x), scale = grad * rho / z per field:
 * one read of a and one write of the gradient. Shapes as nas_strided. */
void nas_strided_backward(const float *a, const float *m, const float *u, const float *scale, float *grad,
                          int64_t outer, int64_t d, int64_t inner, int64_t first_tile, int64_t last_tile) {
  int64_t tiles = (inner + TILE - 1) / TILE;
  for (int64_t job = first_tile; job < last_tile && job < outer * tiles; ++job) {
    int64_t o = job / tiles, p0 = (job % tiles) * TILE;
    int64_t end = p0 + TILE < inner ? p0 + TILE : inner;
    for (int64_t p = p0; p < end; p += LANES) {
      span s = span_at(p, inner);
      vf mv = load_span(m + o * inner, s), uv = load_span(u + o * inner, s), sv = load_span(scale + o * inner, s);
      for (int64_t j = 0; j < d; ++j) {
        int64_t row = (o * d + j) * inner;
        vf x = load_span(a + row, s) - mv;
        store_part(grad + row + s.start, sv * vexp(x) * (uv - x), s.lo, s.hi);
      }
    }
  }
}

/* The lanes of span s that hold fields not read before. */
static inline vi fresh_lanes(span s) { return (lane_ids() >= s.lo) & (lane_ids() < s.hi); }

static inline float hmax(vf v) {
  float r = v[0];
  for (int i = 1; i < LANES; ++i) r = v[i] > r ? v[i] : r;
  return r;
}

static inline float hsum(vf v) {
  float r = 0.0f;
  for (int i = 0; i < LANES; ++i) r += v[i];
  return r;
}

/* a: (rows, d) contiguous; rho (or the NAS, as nas_strided), and where not NULL z, u and m: (rows,);
 * rows [first, last). */
void nas_rows(const float *a, float *out, float *z_out, float *u_out, float *m_out, int64_t as_nas, int64_t rows,
              int64_t d, int64_t first, int64_t last) {
  int64_t full = d - d % LANES;
  for (int64_t r = first; r < last && r < rows; ++r) {
    const float *row = a + r * d;
    vf mv = splat(row[0]), z = splat(0.0f), t = splat(0.0f);
    for (int64_t j = 0; j < full; j += LANES) mv = vmax(mv, loadu(row + j));
    span tail = span_at(full, d);
    if (full < d) mv = vmax(mv, load_span(row, tail));
    vf m = splat(hmax(mv)), zc = splat(0.0f), tc = splat(0.0f);
    /* blocks of SUM_BLOCK vectors, added to the totals with compensation (see tile_partition) */
    for (int64_t j0 = 0; j0 < full; j0 += SUM_BLOCK * LANES) {
      int64_t end = j0 + SUM_BLOCK * LANES < full ? j0 + SUM_BLOCK * LANES : full;
      vf zb = splat(0.0f), tb = splat(0.0f);
      for (int64_t j = j0; j < end; j += LANES) {
        vf x = loadu(row + j) - m, e = vexp(x);
        zb += e;
        tb += e * x;
      }
      add_compensated(&z, &zc, zb);
      add_compensated(&t, &tc, tb);
    }
    if (full < d) {
      vf x = load_span(row, tail) - m, e = vexp(x);
      /* a lane read twice adds 0, and NaN where the first read already made t NaN */
      e = sel(fresh_lanes(tail), e, splat(0.0f));
      add_compensated(&z, &zc, e);
      add_compensated(&t, &tc, e * x);
    }
    vf zs = splat(hsum(z + zc)), ts = splat(hsum(t + tc));
    out[r] = finish(zs, ts, (float)d, as_nas)[0];
    if (z_out) {
      z_out[r] = zs[0];
      u_out[r] = ts[0] / zs[0];
      m_out[r] = m[0];
    }
  }
}

/* The backward of nas_rows: as nas_strided_backward with the filters contiguous. */
void nas_rows_backward(const float *a, const float *m, const float *u, const float *scale, float *grad,
                       int64_t rows, int64_t d, int64_t first, int64_t last) {
  int64_t full = d - d % LANES;
  for (int64_t r = first; r < last && r < rows; ++r) {
    const float *row = a + r * d;
    float *g = grad + r * d;
    vf mv = splat(m[r]), uv = splat(u[r]), sv = splat(scale[r]);
    for (int64_t j = 0; j < full; j += LANES) {
      vf x = loadu(row + j) - mv;
      vf gv = sv * vexp(x) * (uv - x);
      memcpy(g + j, &gv, sizeof gv);
    }
    if (full < d) {
      span tail = span_at(full, d);
      vf x = load_span(row, tail) - mv;
      store_part(g + tail.start, sv * vexp(x) * (uv - x), tail.lo, tail.hi);
    }
  }
}
