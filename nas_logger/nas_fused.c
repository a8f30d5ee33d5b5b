/* Fused single-read NAS kernel for CPU: rho = z * exp(-u) per receptive field, where x = a - max,
 * e = exp(x), z = sum e, u = sum e * x / z over the D filters, clamped to [1, D]; NaN for a field
 * with a non-finite input (as the eager path). Plain C that GCC vectorises: lanes are neighbouring
 * fields (conv) or filters (linear); exp is a Cephes-style polynomial with ~2 ulp error. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TILE 64

static inline float exp_neg(float x) { /* x <= 0, or NaN-free; exp(x) with underflow to 0 */
  const float lo = -87.33654f;
  float xc = x < lo ? lo : x;
  float n = floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return x < lo ? 0.0f : p * scale;
}

static inline float finish(float z, float t, float bad, int64_t d) {
  if (bad != 0.0f) return NAN; /* bad = sum of (a - a): NaN when any input is inf or NaN */
  float rho = z * expf(-t / z);
  return rho < 1.0f ? 1.0f : (rho > (float)d ? (float)d : rho);
}

/* a: (outer, d, inner) contiguous; rho, and for the backward (where not NULL) z, u = sum e x / z and
 * the max m: (outer, inner); tiles [first_tile, last_tile) of TILE fields. */
void nas_strided(const float *a, float *out, float *z_out, float *u_out, float *m_out, int64_t outer, int64_t d,
                 int64_t inner, int64_t first_tile, int64_t last_tile) {
  int64_t tiles = (inner + TILE - 1) / TILE;
  float m[TILE], z[TILE], t[TILE], bad[TILE];
  for (int64_t job = first_tile; job < last_tile && job < outer * tiles; ++job) {
    int64_t o = job / tiles, p0 = (job % tiles) * TILE;
    int64_t n = inner - p0 < TILE ? inner - p0 : TILE;
    const float *base = a + o * d * inner + p0;
    for (int64_t i = 0; i < n; ++i) { m[i] = base[i]; bad[i] = 0.0f; }
    for (int64_t j = 0; j < d; ++j) {
      const float *row = base + j * inner;
      for (int64_t i = 0; i < n; ++i) {
        float v = row[i];
        m[i] = v > m[i] ? v : m[i];
        bad[i] += v - v;
      }
    }
    for (int64_t i = 0; i < n; ++i) { z[i] = 0.0f; t[i] = 0.0f; if (bad[i] != 0.0f) m[i] = 0.0f; }
    for (int64_t j = 0; j < d; ++j) {
      const float *row = base + j * inner;
      for (int64_t i = 0; i < n; ++i) {
        float x = row[i] - m[i];
        float e = exp_neg(x);
        z[i] += e;
        t[i] += e * x;
      }
    }
    for (int64_t i = 0; i < n; ++i) out[o * inner + p0 + i] = finish(z[i], t[i], bad[i], d);
    if (z_out)
      for (int64_t i = 0; i < n; ++i) {
        z_out[o * inner + p0 + i] = z[i];
        u_out[o * inner + p0 + i] = t[i] / z[i];
        m_out[o * inner + p0 + i] = m[i];
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
    int64_t n = inner - p0 < TILE ? inner - p0 : TILE;
    const float *mo = m + o * inner + p0, *uo = u + o * inner + p0, *so = scale + o * inner + p0;
    for (int64_t j = 0; j < d; ++j) {
      const float *row = a + (o * d + j) * inner + p0;
      float *g = grad + (o * d + j) * inner + p0;
      for (int64_t i = 0; i < n; ++i) {
        float x = row[i] - mo[i];
        g[i] = so[i] * exp_neg(x) * (uo[i] - x);
      }
    }
  }
}

/* a: (rows, d) contiguous; rho, and where not NULL z, u and m: (rows,); rows [first, last). */
void nas_rows(const float *a, float *out, float *z_out, float *u_out, float *m_out, int64_t rows, int64_t d,
              int64_t first, int64_t last) {
  enum { L = 16 };
  for (int64_t r = first; r < last && r < rows; ++r) {
    const float *row = a + r * d;
    float m[L], z[L], t[L], bad[L];
    for (int i = 0; i < L; ++i) { m[i] = row[0]; z[i] = t[i] = bad[i] = 0.0f; }
    int64_t full = d - d % L;
    for (int64_t j = 0; j < full; j += L)
      for (int i = 0; i < L; ++i) { float v = row[j + i]; m[i] = v > m[i] ? v : m[i]; bad[i] += v - v; }
    float mx = row[0], b = 0.0f;
    for (int i = 0; i < L; ++i) { mx = m[i] > mx ? m[i] : mx; b += bad[i]; }
    for (int64_t j = full; j < d; ++j) { mx = row[j] > mx ? row[j] : mx; b += row[j] - row[j]; }
    if (b != 0.0f) {
      out[r] = NAN;
      if (z_out) { z_out[r] = NAN; u_out[r] = NAN; m_out[r] = NAN; }
      continue;
    }
    for (int64_t j = 0; j < full; j += L)
      for (int i = 0; i < L; ++i) { float x = row[j + i] - mx, e = exp_neg(x); z[i] += e; t[i] += e * x; }
    float zs = 0.0f, ts = 0.0f;
    for (int i = 0; i < L; ++i) { zs += z[i]; ts += t[i]; }
    for (int64_t j = full; j < d; ++j) { float x = row[j] - mx, e = exp_neg(x); zs += e; ts += e * x; }
    out[r] = finish(zs, ts, 0.0f, d);
    if (z_out) { z_out[r] = zs; u_out[r] = ts / zs; m_out[r] = mx; }
  }
}

/* The backward of nas_rows: as nas_strided_backward with the filters contiguous. */
void nas_rows_backward(const float *a, const float *m, const float *u, const float *scale, float *grad,
                       int64_t rows, int64_t d, int64_t first, int64_t last) {
  for (int64_t r = first; r < last && r < rows; ++r) {
    const float *row = a + r * d;
    float *g = grad + r * d;
    for (int64_t j = 0; j < d; ++j) {
      float x = row[j] - m[r];
      g[j] = scale[r] * exp_neg(x) * (u[r] - x);
    }
  }
}
