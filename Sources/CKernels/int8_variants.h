// The bodies of int8_linear.c's quantisers and portable dequantisation, compiled once per
// instruction set (variants.h, which sets CK_VARIANT and the target); int8_linear.c
// dispatches between the copies. No include guard: included several times on purpose.

static void CK_VARIANT(ck_quantize_rows_u8)(const float *rows, size_t count, size_t dim, uint8_t *codes, size_t code_stride,
                         float *scales, int32_t *zero_points, int max_code) {
    const float top = (float)max_code;
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * dim;
        float lo = 0, hi = 0;
        for (size_t j = 0; j < dim; j++) {
            lo = fminf(lo, row[j]);
            hi = fmaxf(hi, row[j]);
        }
        float scale = (hi - lo) / top;
        if (!(scale > 0)) scale = 1;
        int32_t zero = (int32_t)nearbyintf(-lo / scale);
        if (zero < 0) zero = 0;
        if (zero > max_code) zero = max_code;
        float inverse = 1.0f / scale, shift = (float)zero;
        uint8_t *out = codes + r * code_stride;
        for (size_t j = 0; j < dim; j++) {
            float q = nearbyintf(row[j] * inverse) + shift;
            q = fminf(top, fmaxf(0.0f, q));
            out[j] = (uint8_t)(int32_t)q;
        }
        // The kernel reads whole groups of four codes: the padding multiplies zero weights,
        // and zeroing it keeps the products exact whatever was there before.
        for (size_t j = dim; j < code_stride; j++) out[j] = 0;
        scales[r] = scale;
        zero_points[r] = zero;
    }
}

static void CK_VARIANT(ck_quantize_weights_s8)(const float *rows, size_t count, size_t dim, int8_t *codes,
                            float *scales, int32_t *code_sums, float *code_l1) {
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * dim;
        float max_abs = 0;
        for (size_t j = 0; j < dim; j++) max_abs = fmaxf(max_abs, fabsf(row[j]));
        float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
        float inverse = 1.0f / scale;
        int32_t sum = 0, l1 = 0;
        for (size_t j = 0; j < dim; j++) {
            float q = fminf(127.0f, fmaxf(-127.0f, nearbyintf(row[j] * inverse)));
            int32_t code = (int32_t)q;
            codes[r * dim + j] = (int8_t)code;
            sum += code;
            l1 += code < 0 ? -code : code;
        }
        scales[r] = scale;
        code_sums[r] = sum;
        code_l1[r] = (float)l1;
    }
}

static void CK_VARIANT(dequantize_rows)(const int32_t *products, size_t rows, size_t cols, const struct ck_int8_epilogue *e,
                                        float *out, size_t out_stride) {
    DEQUANTIZE_ROWS
}
