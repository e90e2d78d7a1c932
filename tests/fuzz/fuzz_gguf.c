// libFuzzer target: our build's GGUF loader (ggml/src/gguf.cpp) and the row-data validation of every tensor type
// it accepts, including I2_S/TL1/TL2 (kernels/*-quants.c).
//
// The input is read through gguf_init_from_file_ptr on an fmemopen stream: the code path of gguf_init_from_file
// without a temp file per execution. A first pass reads metadata and tensor table only; a second one reads the tensor
// data into a ggml context too, and each tensor is then checked with ggml_validate_row_data, as llama.cpp's
// --check-tensors does. Any sanitizer report or abort is a crash; a NULL context (rejected input) is not.
#include "ggml.h"
#include "gguf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet_log(enum ggml_log_level level, const char * text, void * user_data) {
    (void) level; (void) text; (void) user_data;  // millions of "invalid magic" lines would slow fuzzing down
}

int LLVMFuzzerInitialize(int * argc, char *** argv);
int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);

int LLVMFuzzerInitialize(int * argc, char *** argv) {
    (void) argc; (void) argv;
    ggml_log_set(quiet_log, NULL);
    return 0;
}

// touch every key and tensor through the public accessors, as llama's loader does
static void walk(const struct gguf_context * gctx) {
    volatile size_t sink = gguf_get_alignment(gctx) + gguf_get_data_offset(gctx) + gguf_get_meta_size(gctx);
    const int64_t n_kv = gguf_get_n_kv(gctx);
    for (int64_t i = 0; i < n_kv; i++) {
        const char * key = gguf_get_key(gctx, i);
        sink += strlen(key) + (size_t) gguf_find_key(gctx, key);
        const enum gguf_type type = gguf_get_kv_type(gctx, i);
        if (type == GGUF_TYPE_ARRAY) {
            const enum gguf_type atype = gguf_get_arr_type(gctx, i);
            const size_t n = gguf_get_arr_n(gctx, i);
            if (atype == GGUF_TYPE_STRING) {
                for (size_t j = 0; j < n; j++) {
                    sink += strlen(gguf_get_arr_str(gctx, i, j));
                }
            } else if (n > 0) {
                sink += ((const uint8_t *) gguf_get_arr_data(gctx, i))[0];
            }
        } else if (type == GGUF_TYPE_STRING) {
            sink += strlen(gguf_get_val_str(gctx, i));
        } else {
            sink += ((const uint8_t *) gguf_get_val_data(gctx, i))[0];
        }
    }
    const int64_t n_tensors = gguf_get_n_tensors(gctx);
    for (int64_t i = 0; i < n_tensors; i++) {
        const char * name = gguf_get_tensor_name(gctx, i);
        sink += (size_t) gguf_find_tensor(gctx, name) + gguf_get_tensor_offset(gctx, i) + gguf_get_tensor_size(gctx, i);
        sink += (size_t) gguf_get_tensor_ne(gctx, i)[0] + (size_t) gguf_get_tensor_type(gctx, i);
    }
    (void) sink;
}

static struct gguf_context * load(const uint8_t * data, size_t size, struct ggml_context ** ctx) {
    FILE * f = fmemopen((void *) data, size, "rb");
    if (f == NULL) {
        return NULL;
    }
    struct gguf_init_params params = { /*.no_alloc =*/ ctx == NULL, /*.ctx =*/ ctx };
    struct gguf_context * gctx = gguf_init_from_file_ptr(f, params);
    fclose(f);
    return gctx;
}


int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size == 0) {
        return 0;  // fmemopen refuses an empty buffer
    }
    // pass 1: metadata and tensor table only (what llama's loader asks for)
    struct gguf_context * gctx = load(data, size, NULL);
    if (gctx == NULL) {
        return 0;
    }
    walk(gctx);
    gguf_free(gctx);
    // pass 2: with the tensor data, then ggml's row validation of every tensor (--check-tensors)
    struct ggml_context * ctx = NULL;
    gctx = load(data, size, &ctx);
    if (gctx == NULL) {
        return 0;
    }
    if (ctx != NULL) {
        for (struct ggml_tensor * t = ggml_get_first_tensor(ctx); t != NULL; t = ggml_get_next_tensor(ctx, t)) {
            if (t->data != NULL && strcmp(t->name, "GGUF tensor data binary blob") != 0) {
                ggml_validate_row_data(t->type, t->data, ggml_nbytes(t));
            }
        }
        ggml_free(ctx);
    }
    gguf_free(gctx);
    return 0;
}
