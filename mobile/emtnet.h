/* The mobile runtime behind a C interface, for apps that reach it through JNI (Android) or
 * Swift / Objective-C (iOS): an opaque model handle, 8-bit grey pixels in (a camera frame's luma
 * plane as it is), the malignancy probability and a lesion mask at the image's own size out.
 * Preprocessing is the engine's (mobile/preprocess.h) with the settings graph2mobile stored in
 * the model, so the app cannot get them wrong. Errors are return values with a message, never
 * exceptions across the C boundary. A handle is not thread-safe: use one per thread. */
#ifndef EMTNET_MOBILE_H
#define EMTNET_MOBILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct emt_model emt_model;

/* Loads a graph2mobile model whose predictions run on `threads` threads (>= 1; the phone's big
 * cores, say; results do not depend on it). Returns NULL on failure, with the reason in error
 * (NUL-terminated, cut to error_size bytes; error may be NULL). */
emt_model* emt_model_load(const char* path, int threads, char* error, size_t error_size);

void emt_model_free(emt_model* model);

/* The side of the square the model sees, and the probability from which a case is called
 * malignant (the threshold stored with the weights). */
int emt_model_input_size(const emt_model* model);
float emt_model_threshold(const emt_model* model);

/* Predicts one image of width x height pixels, row_stride bytes apart. Writes the malignancy
 * probability to *probability (when not NULL; NaN for a model without classifier) and, when mask is
 * not NULL, width * height bytes (row stride width) of lesion mask, 255 inside and 0 outside.
 * Returns 0, or -1 with the reason in error. */
int emt_model_predict(emt_model* model, const uint8_t* pixels, int width, int height,
                      int row_stride, float* probability, uint8_t* mask, char* error,
                      size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
