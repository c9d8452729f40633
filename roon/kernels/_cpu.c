/* Compiled CPU face of the exhaustive signature op (see roon/kernels/exhaustive.py).
 *
 * count(w, b, tol, n, radix, fire, chow, min_abs, uncertain, table, words)
 *   w [N, n], b [N], tol [N]: int64 rows over sorted positions (roon.kernels.exact).
 *   Outputs (int64): fire [N], chow [N, n], min_abs [N], uncertain [N];
 *   table [N, words] uint64 (words == 0: no table).
 * Same rule as the NumPy reference: excited iff s > tol, uncertain iff tol > 0 and
 * |s| <= tol, all on int64 (Σ|w| + |b| <= 2^61, so nothing overflows). The GIL is
 * released, so Python threads over chunks of neurons run in parallel.
 *
 * Binary fan-in >= 6 (the hot path): a table of 2^L low subset sums in index order, a
 * Gray-code walk over the high inputs (one add per row), and per row a compare of every
 * low sum against one threshold, packed into 64-bit masks. Chow parameters come from
 * popcounts: low bits 0-5 through fixed patterns (or per-bit-position byte counters with
 * AVX-512), low bits >= 6 through per-word counts, high bits through per-row counts.
 * min |s| and the uncertain count need no work per input: a two-pointer sweep over the
 * sorted subset sums of the two halves of the inputs (O(2^(n/2))).
 * Everything else (signed, binary fan-in < 6) takes a plain digit-table loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_mitm.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define ROON_X86 1
#include <immintrin.h>
#endif

/* Low bits of the blocked path: 2^11 sums (16 KiB) stay in L1. Measured on a 2-core
 * AVX-512 Xeon (µs per neuron at n = 16 / 20): L = 9: 12.7 / 154, 10: 9.3 / 114,
 * 11: 8.9 / 85, 12: 10.6 / 97. At most 13: a row's per-position byte counters
 * (AVX-512 path) take 2^(L-6) words before they are widened and must stay below 255. */
#define LOW_BITS 11
_Static_assert(LOW_BITS >= 6 && LOW_BITS <= 13, "LOW_BITS must be in 6..13");
/* Low digits of the generic path: 3^6 = 729 sums per row (signed). */
#define LOW_DIGITS_GENERIC 6

static const uint64_t PATTERN[6] = {
    0xAAAAAAAAAAAAAAAAull, 0xCCCCCCCCCCCCCCCCull, 0xF0F0F0F0F0F0F0F0ull,
    0xFF00FF00FF00FF00ull, 0xFFFF0000FFFF0000ull, 0xFFFFFFFF00000000ull};

#if defined(__GNUC__)
#define POPCOUNT64(x) __builtin_popcountll(x)
#else
static int popcount64(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}
#define POPCOUNT64(x) popcount64(x)
#endif

#if defined(__GNUC__)
#define CTZ64(x) __builtin_ctzll(x)
#else
static int ctz64(uint64_t x) {
    int k = 0;
    while (!(x & 1)) { x >>= 1; k++; }
    return k;
}
#define CTZ64(x) ctz64(x)
#endif

/* Per-word bookkeeping of the portable variants: row count, per-word count, and the
 * popcounts of the six patterns that give the Chow parameters of low bits 0-5. */
#define ACCOUNT_WORD(m, q)                                                       \
    do {                                                                         \
        int64_t pc_ = POPCOUNT64(m);                                             \
        masks[q] = (m);                                                          \
        qcount[q] += pc_;                                                        \
        total += pc_;                                                            \
        for (int i_ = 0; i_ < 6; i_++) acc[i_] += POPCOUNT64((m) & PATTERN[i_]); \
    } while (0)

/* One row: bit k of masks[q] = lows[64q + k] > thr; returns the row's popcount and adds
 * each word's popcount to qcount[q]. Low-bit Chow material goes to acc: the scalar and
 * AVX2 variants add six pattern popcounts to acc[0..5]; the AVX-512 variant adds the
 * count of each bit position k = 0..63 to acc[k] (ACC_COLUMNS). */
typedef int64_t (*row_fn)(const int64_t *, int, int64_t, uint64_t *, int64_t *, int64_t *);

static int64_t row_scalar(const int64_t *lows, int nw, int64_t thr, uint64_t *masks,
                          int64_t *qcount, int64_t *acc) {
    int64_t total = 0;
    for (int q = 0; q < nw; q++) {
        const int64_t *p = lows + 64 * q;
        uint64_t m = 0;
        for (int k = 0; k < 64; k++) m |= (uint64_t)(p[k] > thr) << k;
        ACCOUNT_WORD(m, q);
    }
    return total;
}

#ifdef ROON_X86
__attribute__((target("avx2,popcnt"))) static int64_t row_avx2(
    const int64_t *lows, int nw, int64_t thr, uint64_t *masks, int64_t *qcount, int64_t *acc) {
    int64_t total = 0;
    __m256i vt = _mm256_set1_epi64x(thr);
    for (int q = 0; q < nw; q++) {
        const int64_t *p = lows + 64 * q;
        uint64_t m = 0;
        for (int k = 0; k < 16; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(p + 4 * k));
            int c = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(v, vt)));
            m |= (uint64_t)c << (4 * k);
        }
        ACCOUNT_WORD(m, q);
    }
    return total;
}

/* AVX-512: 8 compares per word joined by mask unpacks; per-bit-position counts as +1 bytes
 * (a row has at most 2^(LOW_BITS-6) = 16 words, far below a byte's 255), widened to
 * int64 once per row. That replaces six popcounts per word by two vector ops. */
__attribute__((target("avx512f,avx512bw,popcnt"))) static int64_t row_avx512(
    const int64_t *lows, int nw, int64_t thr, uint64_t *masks, int64_t *qcount, int64_t *acc) {
    int64_t total = 0;
    __m512i vt = _mm512_set1_epi64(thr);
    __m512i bytes = _mm512_setzero_si512();
    for (int q = 0; q < nw; q++) {
        const int64_t *p = lows + 64 * q;
        __mmask16 m01 = _mm512_kunpackb(_mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 8), vt),
                                        _mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p), vt));
        __mmask16 m23 = _mm512_kunpackb(_mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 24), vt),
                                        _mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 16), vt));
        __mmask16 m45 = _mm512_kunpackb(_mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 40), vt),
                                        _mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 32), vt));
        __mmask16 m67 = _mm512_kunpackb(_mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 56), vt),
                                        _mm512_cmpgt_epi64_mask(_mm512_loadu_si512(p + 48), vt));
        __mmask64 m = _mm512_kunpackd((__mmask64)_mm512_kunpackw(m67, m45),
                                      (__mmask64)_mm512_kunpackw(m23, m01));
        bytes = _mm512_sub_epi8(bytes, _mm512_movm_epi8(m)); /* set bytes are -1 */
        int64_t pc = POPCOUNT64((uint64_t)m);
        masks[q] = (uint64_t)m;
        qcount[q] += pc;
        total += pc;
    }
    uint8_t b[64];
    _mm512_storeu_si512(b, bytes);
    for (int k = 0; k < 64; k++) acc[k] += b[k];
    return total;
}
#endif

static row_fn ROW = row_scalar;
static int ACC_COLUMNS = 0; /* 1: acc holds per-bit-position counts (AVX-512) */
static const char *ISA = "scalar";

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

/* Ascending subset sums of w[0..k) into out (2^k entries), by merging S with S + w_i;
 * branch-free merge steps, since which side wins is unpredictable. */
static void sorted_sums(const int64_t *w, int k, int64_t *out, int64_t *tmp) {
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        int64_t half = (int64_t)1 << i, wi = w[i], a = 0, c = 0;
        for (int64_t j = 0; j < 2 * half; j++) {
            int64_t x = a < half ? out[a] : INT64_MAX;
            int64_t y = c < half ? out[c] + wi : INT64_MAX;
            int64_t take = x <= y;
            tmp[j] = take ? x : y;
            a += take;
            c += 1 - take;
        }
        memcpy(out, tmp, (size_t)(2 * half) * sizeof(int64_t));
    }
}

/* min |a + c| over a in A, c in C, and (tol > 0) the pairs with |a + c| <= tol: every input
 * sum is one such pair when A and C split the inputs. Two-pointer sweeps, O(|A| + |C|). */
static void closest(const int64_t *A, int64_t na, const int64_t *C, int64_t nc, int64_t tol,
                    int64_t *min_abs, int64_t *unc) {
    int64_t best = INT64_MAX, i = 0, j = nc - 1;
    while (i < na && j >= 0) {
        int64_t s = A[i] + C[j];
        if (abs64(s) < best) best = abs64(s);
        if (s > 0) j--; else i++;
    }
    *min_abs = best;
    int64_t count = 0;
    if (tol > 0) {
        int64_t lo = 0, hi = 0; /* for A[i] descending, both bounds of C move up */
        for (int64_t a = na - 1; a >= 0; a--) {
            while (lo < nc && C[lo] < -tol - A[a]) lo++;
            while (hi < nc && C[hi] <= tol - A[a]) hi++;
            count += hi - lo;
        }
    }
    *unc = count;
}

/* Binary neuron with n >= 6: blocked enumeration for the counts (and table). */
static void neuron_blocked(const int64_t *w, int n, int64_t b, int64_t tol, int64_t *fire,
                           int64_t *chow, int64_t *min_abs, int64_t *unc, uint64_t *table,
                           int64_t *lows, uint64_t *masks, int64_t *qcount, int64_t *hcount,
                           int64_t *half_a, int64_t *half_c, int64_t *tmp) {
    int low = n < LOW_BITS ? n : LOW_BITS;
    int64_t n_low = (int64_t)1 << low, n_high = (int64_t)1 << (n - low);
    int nw = (int)(n_low >> 6);
    int64_t acc[64] = {0};

    lows[0] = 0;
    for (int i = 0; i < low; i++) {
        int64_t half = (int64_t)1 << i, wi = w[i];
        for (int64_t j = 0; j < half; j++) lows[half + j] = lows[j] + wi;
    }
    memset(qcount, 0, (size_t)nw * sizeof(int64_t));

    int64_t t = b;
    uint64_t g = 0;
    for (int64_t r = 0; r < n_high; r++) {
        if (r > 0) { /* Gray code: flip the lowest set bit of r, one add per row */
            int k = CTZ64((uint64_t)r);
            g ^= (uint64_t)1 << k;
            t += ((g >> k) & 1) ? w[low + k] : -w[low + k];
        }
        /* excited iff low + t > tol, i.e. low > tol - t */
        hcount[g] = ROW(lows, nw, tol - t, masks, qcount, acc);
        if (table) memcpy(table + (g << (low - 6)), masks, (size_t)nw * sizeof(uint64_t));
    }

    int64_t total = 0;
    for (int i = 0; i < n; i++) chow[i] = 0;
    if (ACC_COLUMNS) {
        for (int k = 0; k < 64; k++)
            for (int i = 0; i < 6; i++)
                if ((k >> i) & 1) chow[i] += acc[k];
    } else {
        for (int i = 0; i < 6; i++) chow[i] = acc[i];
    }
    for (int q = 0; q < nw; q++)
        for (int i = 6; i < low; i++)
            if ((q >> (i - 6)) & 1) chow[i] += qcount[q];
    for (int64_t h = 0; h < n_high; h++) {
        total += hcount[h];
        for (int i = low; i < n; i++)
            if ((h >> (i - low)) & 1) chow[i] += hcount[h];
    }
    *fire = total;

    /* min |s| and the uncertain count from two sorted halves (meet in the middle) */
    int ka = n / 2;
    sorted_sums(w, ka, half_a, tmp);
    sorted_sums(w + ka, n - ka, half_c, tmp);
    for (int64_t j = 0; j < ((int64_t)1 << (n - ka)); j++) half_c[j] += b;
    closest(half_a, (int64_t)1 << ka, half_c, (int64_t)1 << (n - ka), tol, min_abs, unc);
}

/* Any radix: plain loop over a table of low digit sums (signed, or binary n < 6). GCC
 * clones it per instruction set (runtime dispatch) so the inner loops use wide int64
 * compares where the CPU has them; never -march=native, so the build stays portable. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void neuron_generic(const int64_t *w, int n, int radix, int64_t b, int64_t tol,
                           int64_t *fire, int64_t *chow, int64_t *min_abs, int64_t *unc,
                           uint64_t *table, int64_t *lows, int64_t *ccount, int64_t *hcount) {
    static const int64_t VALS2[2] = {0, 1}, VALS3[3] = {-1, 0, 1};
    const int64_t *vals = radix == 2 ? VALS2 : VALS3;
    int low = n < LOW_DIGITS_GENERIC ? n : LOW_DIGITS_GENERIC;
    int64_t n_low = 1, n_high = 1;
    for (int i = 0; i < low; i++) n_low *= radix;
    for (int i = low; i < n; i++) n_high *= radix;

    lows[0] = 0;
    for (int i = 0, size = 1; i < low; i++, size *= radix)
        for (int d = radix - 1; d >= 0; d--)
            for (int64_t j = 0; j < size; j++) lows[d * size + j] = lows[j] + vals[d] * w[i];
    memset(ccount, 0, (size_t)n_low * sizeof(int64_t));

    int digits[64] = {0};
    int64_t t = b, best = INT64_MAX, uncertain = 0, total = 0;
    for (int i = low; i < n; i++) t += vals[0] * w[i];
    for (int64_t h = 0; h < n_high; h++) {
        if (h > 0) { /* odometer over the high digits */
            int k = 0;
            while (digits[k] == radix - 1) {
                t -= (vals[radix - 1] - vals[0]) * w[low + k];
                digits[k++] = 0;
            }
            t += (vals[digits[k] + 1] - vals[digits[k]]) * w[low + k];
            digits[k]++;
        }
        int64_t thr = tol - t, rc = 0;
        /* branch-free loops that compilers vectorize; the rare parts get their own */
        for (int64_t j = 0; j < n_low; j++) {
            int64_t e = lows[j] > thr, a = abs64(lows[j] + t);
            ccount[j] += e;
            rc += e;
            best = a < best ? a : best;
        }
        if (tol > 0)
            for (int64_t j = 0; j < n_low; j++) uncertain += abs64(lows[j] + t) <= tol;
        if (table)
            for (int64_t j = 0, m = h * n_low; j < n_low; j++, m++)
                table[m >> 6] |= (uint64_t)(lows[j] > thr) << (m & 63);
        hcount[h] = rc;
        total += rc;
    }
    for (int i = 0; i < n; i++) chow[i] = 0;
    for (int64_t j = 0; j < n_low; j++)
        for (int64_t i = 0, q = j; i < low; i++, q /= radix) chow[i] += vals[q % radix] * ccount[j];
    for (int64_t h = 0; h < n_high; h++)
        for (int64_t i = low, q = h; i < n; i++, q /= radix) chow[i] += vals[q % radix] * hcount[h];
    *fire = total;
    *min_abs = best;
    *unc = uncertain;
}

static int need(Py_buffer *buf, Py_ssize_t items, const char *name) {
    if (buf->len < items * 8) {
        PyErr_Format(PyExc_ValueError, "_cpu.count: buffer %s holds %zd bytes, needs %zd", name,
                     buf->len, items * 8);
        return 0;
    }
    return 1;
}

static PyObject *count(PyObject *self, PyObject *args) {
    Py_buffer w, b, tol, fire, chow, mins, unc, table;
    int n, radix;
    Py_ssize_t words;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*iiw*w*w*w*w*n", &w, &b, &tol, &n, &radix, &fire, &chow,
                          &mins, &unc, &table, &words))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t rows = b.len / 8;
    int64_t *lows = NULL, *qcount = NULL, *hcount = NULL, *half_a = NULL, *half_c = NULL;
    int64_t *tmp = NULL;
    uint64_t *masks = NULL;
    if (n < 0 || n > 40 || (radix != 2 && radix != 3) || (radix == 3 && n > 24)) {
        PyErr_Format(PyExc_ValueError, "_cpu.count: fan-in %d radix %d is out of range", n, radix);
        goto done;
    }
    if (!need(&w, rows * n, "w") || !need(&tol, rows, "tol") || !need(&fire, rows, "fire") ||
        !need(&chow, rows * n, "chow") || !need(&mins, rows, "min_abs") ||
        !need(&unc, rows, "uncertain") || !need(&table, rows * words, "table"))
        goto done;
    int blocked = radix == 2 && n >= 6;
    int low = blocked ? (n < LOW_BITS ? n : LOW_BITS)
                      : (n < LOW_DIGITS_GENERIC ? n : LOW_DIGITS_GENERIC);
    int64_t n_low = 1, n_high = 1, n_half = (int64_t)1 << (blocked ? n - n / 2 : 0);
    for (int i = 0; i < low; i++) n_low *= radix;
    for (int i = low; i < n; i++) n_high *= radix;
    if (words > 0 && words < (n_low * n_high + 63) / 64) {
        PyErr_Format(PyExc_ValueError, "_cpu.count: %zd table words are too few", words);
        goto done;
    }
    lows = malloc((size_t)n_low * sizeof(int64_t));
    qcount = malloc((size_t)n_low * sizeof(int64_t));
    hcount = malloc((size_t)n_high * sizeof(int64_t));
    masks = malloc((size_t)(n_low / 64 + 1) * sizeof(uint64_t));
    half_a = malloc((size_t)n_half * sizeof(int64_t));
    half_c = malloc((size_t)n_half * sizeof(int64_t));
    tmp = malloc((size_t)n_half * sizeof(int64_t));
    if (!lows || !qcount || !hcount || !masks || !half_a || !half_c || !tmp) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *W = w.buf, *B = b.buf, *T = tol.buf;
    int64_t *F = fire.buf, *C = chow.buf, *M = mins.buf, *U = unc.buf;
    uint64_t *TB = table.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t *row_table = words > 0 ? TB + r * words : NULL;
        if (row_table) memset(row_table, 0, (size_t)words * sizeof(uint64_t));
        if (blocked)
            neuron_blocked(W + r * n, n, B[r], T[r], F + r, C + r * n, M + r, U + r, row_table,
                           lows, masks, qcount, hcount, half_a, half_c, tmp);
        else
            neuron_generic(W + r * n, n, radix, B[r], T[r], F + r, C + r * n, M + r, U + r,
                           row_table, lows, qcount, hcount);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    free(lows);
    free(qcount);
    free(hcount);
    free(masks);
    free(half_a);
    free(half_c);
    free(tmp);
    PyBuffer_Release(&w);
    PyBuffer_Release(&b);
    PyBuffer_Release(&tol);
    PyBuffer_Release(&fire);
    PyBuffer_Release(&chow);
    PyBuffer_Release(&mins);
    PyBuffer_Release(&unc);
    PyBuffer_Release(&table);
    return result;
}

/* mitm(w, b, tol, n, fire, chow, high, low, uncertain, mem_limit): the meet-in-the-middle
 * counts of every binary int64 row (see _mitm.c); high = INT64_MAX / low = INT64_MIN
 * mean "no such input". One buffer of the plan's size serves every row. */
static PyObject *mitm(PyObject *self, PyObject *args) {
    Py_buffer w, b, tol, fire, chow, high, low, unc;
    int n;
    Py_ssize_t mem_limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*iw*w*w*w*w*n", &w, &b, &tol, &n, &fire, &chow, &high,
                          &low, &unc, &mem_limit))
        return NULL;
    PyObject *result = NULL;
    void *buf = NULL;
    Py_ssize_t rows = b.len / 8;
    mitm_plan plan;
    if (mem_limit < 0 || !mitm_choose(n, (size_t)mem_limit, &plan)) {
        PyErr_Format(PyExc_ValueError, "_cpu.mitm: no plan for fan-in %d in %zd bytes", n,
                     mem_limit);
        goto done;
    }
    if (!need(&w, rows * n, "w") || !need(&tol, rows, "tol") || !need(&fire, rows, "fire") ||
        !need(&chow, rows * n, "chow") || !need(&high, rows, "high") ||
        !need(&low, rows, "low") || !need(&unc, rows, "uncertain"))
        goto done;
    buf = rows > 0 ? malloc(plan.bytes) : NULL;
    if (rows > 0 && !buf) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *W = w.buf, *B = b.buf, *T = tol.buf;
    int64_t *F = fire.buf, *C = chow.buf, *H = high.buf, *L = low.buf, *U = unc.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++)
        mitm_row(&plan, buf, W + r * n, B[r], T[r], F + r, C + r * n, H + r, L + r, U + r);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    free(buf);
    PyBuffer_Release(&w);
    PyBuffer_Release(&b);
    PyBuffer_Release(&tol);
    PyBuffer_Release(&fire);
    PyBuffer_Release(&chow);
    PyBuffer_Release(&high);
    PyBuffer_Release(&low);
    PyBuffer_Release(&unc);
    return result;
}

/* mitm_window(w, b, lo, hi, n, out, mem_limit) -> count: the inputs of one binary int64
 * row with lo <= w·x + b <= hi, the first len(out) of them as uint64 masks in out. */
static PyObject *mitm_window_of(PyObject *self, PyObject *args) {
    Py_buffer w, out;
    long long b, lo, hi;
    int n;
    Py_ssize_t mem_limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*LLLiw*n", &w, &b, &lo, &hi, &n, &out, &mem_limit)) return NULL;
    PyObject *result = NULL;
    void *buf = NULL;
    mitm_plan plan;
    if (mem_limit < 0 || !mitm_choose(n, (size_t)mem_limit, &plan)) {
        PyErr_Format(PyExc_ValueError, "_cpu.mitm_window: no plan for fan-in %d in %zd bytes",
                     n, mem_limit);
        goto done;
    }
    if (!need(&w, n, "w")) goto done;
    buf = malloc(plan.bytes);
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t found;
    const int64_t *W = w.buf;
    uint64_t *OUT = out.buf;
    Py_ssize_t cap = out.len / 8;
    Py_BEGIN_ALLOW_THREADS
    found = mitm_window(&plan, buf, W, (int64_t)b, (int64_t)lo, (int64_t)hi, OUT, cap);
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong((long long)found);
done:
    free(buf);
    PyBuffer_Release(&w);
    PyBuffer_Release(&out);
    return result;
}

/* mitm_plan(n, mem_limit) -> (nb, a, h, bytes), or None when no plan fits. */
static PyObject *mitm_plan_of(PyObject *self, PyObject *args) {
    int n;
    Py_ssize_t mem_limit;
    mitm_plan plan;
    (void)self;
    if (!PyArg_ParseTuple(args, "in", &n, &mem_limit)) return NULL;
    if (mem_limit < 0 || !mitm_choose(n, (size_t)mem_limit, &plan)) Py_RETURN_NONE;
    return Py_BuildValue("(iiin)", plan.nb, plan.a, plan.h, (Py_ssize_t)plan.bytes);
}

static PyObject *isa(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyUnicode_FromString(ISA);
}

/* Pick the compare-and-pack variant by name (tests run every variant the CPU supports). */
static PyObject *use_isa(PyObject *self, PyObject *args) {
    const char *name;
    (void)self;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    if (strcmp(name, "scalar") == 0) {
        ROW = row_scalar;
        ACC_COLUMNS = 0;
        ISA = "scalar";
#ifdef ROON_X86
    } else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("popcnt")) {
        ROW = row_avx2;
        ACC_COLUMNS = 0;
        ISA = "avx2";
    } else if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("popcnt")) {
        ROW = row_avx512;
        ACC_COLUMNS = 1;
        ISA = "avx512";
#endif
    } else {
        PyErr_Format(PyExc_ValueError, "_cpu.use_isa: %s is not available on this CPU", name);
        return NULL;
    }
    return PyUnicode_FromString(ISA);
}

static PyMethodDef METHODS[] = {
    {"count", count, METH_VARARGS, "Exhaustive counts of int64 neuron rows (see _cpu.c)."},
    {"mitm", mitm, METH_VARARGS, "Meet-in-the-middle counts of binary int64 rows (_mitm.c)."},
    {"mitm_window", mitm_window_of, METH_VARARGS, "Inputs of one row with lo <= s <= hi."},
    {"mitm_plan", mitm_plan_of, METH_VARARGS, "(nb, a, h, bytes) of the plan for a fan-in."},
    {"isa", isa, METH_NOARGS, "Instruction set of the compare-and-pack loop in use."},
    {"use_isa", use_isa, METH_VARARGS, "Select scalar, avx2 or avx512 (if supported)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cpu",
                                    "Compiled CPU face of roon's exhaustive signature op.", -1,
                                    METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cpu(void) {
    PyObject *module = PyModule_Create(&MODULE);
    if (!module) return NULL;
#ifdef ROON_X86
    __builtin_cpu_init();
    /* the widest variant this CPU runs */
    static const char *const PREFERRED[] = {"avx512", "avx2"};
    for (int i = 0; i < 2; i++) {
        PyObject *r = PyObject_CallMethod(module, "use_isa", "s", PREFERRED[i]);
        if (r) {
            Py_DECREF(r);
            break;
        }
        PyErr_Clear();
    }
#endif
    return module;
}
