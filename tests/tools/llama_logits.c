// Logits of a prompt and of its greedy continuation, for comparing two builds of the same model
// (tests/test_arm_end_to_end.py: x86 against aarch64 under qemu). llama-completion prints text only, and the
// Python API cannot run under qemu-user, so this small program on llama.h is compiled against each build.
//
//   llama_logits MODEL PROMPT N_GEN OUT.f32
//
// The prompt goes in as one batch with every position's logits kept (the GEMM kernels), then N_GEN greedy tokens
// one at a time (the GEMV kernels). OUT gets the rows as float32, n_prompt + N_GEN rows of n_vocab; stdout gets
// "prompt: <ids>" and "tokens: <ids>" (the argmax of rows n_prompt-1 .. n_prompt+N_GEN-2, lowest id on a tie).
// One thread, so the order of every float sum is the build's own and nothing depends on scheduling.
// LLAMA_LOGITS_TRACE=1 also prints "T name op ne0 ne1 hash" for every F32 tensor computed: diff two builds' traces
// to find the first op whose bits differ.
#include "ggml-backend.h"
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool trace_tensor(struct ggml_tensor * t, bool ask, void * user_data) {
    (void) user_data;
    if (ask || t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) {
        return true;  // ask: yes, show every tensor once computed
    }
    const size_t n = ggml_nbytes(t);
    unsigned char * bytes = malloc(n);
    ggml_backend_tensor_get(t, bytes, 0, n);
    unsigned long long h = 1469598103934665603ULL;  // FNV-1a of the bytes
    for (size_t i = 0; i < n; ++i) {
        h = (h ^ bytes[i]) * 1099511628211ULL;
    }
    free(bytes);
    fprintf(stderr, "T %s %s %lld %lld %016llx\n", t->name, ggml_op_desc(t), (long long) t->ne[0], (long long) t->ne[1], h);
    return true;
}

static void log_warnings(enum ggml_log_level level, const char * text, void * user_data) {
    (void) user_data;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static int argmax(const float * row, int n) {
    int best = 0;
    for (int i = 1; i < n; ++i) {
        if (row[i] > row[best]) {
            best = i;
        }
    }
    return best;
}

static int fail(const char * what) {
    fprintf(stderr, "llama_logits: %s\n", what);
    return 1;
}

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL PROMPT N_GEN OUT.f32\n", argv[0]);
        return 2;
    }
    const char * prompt = argv[2];
    const int n_gen = atoi(argv[3]);
    if (n_gen < 1) {
        return fail("N_GEN must be at least 1");
    }
    llama_log_set(log_warnings, NULL);
    llama_backend_init();

    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (model == NULL) {
        return fail("cannot load the model");
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int n_prompt = -llama_tokenize(vocab, prompt, (int32_t) strlen(prompt), NULL, 0, true, true);
    if (n_prompt < 1) {
        return fail("cannot tokenize the prompt");
    }
    llama_token * tokens = malloc(sizeof(llama_token) * (size_t) n_prompt);
    if (llama_tokenize(vocab, prompt, (int32_t) strlen(prompt), tokens, n_prompt, true, true) != n_prompt) {
        return fail("cannot tokenize the prompt");
    }

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t) (n_prompt + n_gen + 1);
    cparams.n_batch = cparams.n_ubatch = (uint32_t) n_prompt;  // the whole prompt in one ubatch
    cparams.n_threads = cparams.n_threads_batch = 1;
    cparams.no_perf = true;
    const char * trace = getenv("LLAMA_LOGITS_TRACE");
    if (trace != NULL && strcmp(trace, "1") == 0) {
        cparams.cb_eval = trace_tensor;
    }
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    if (ctx == NULL) {
        return fail("cannot create the context");
    }
    FILE * out = fopen(argv[4], "wb");
    if (out == NULL) {
        return fail("cannot open the output file");
    }

    struct llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_prompt;
    if (llama_decode(ctx, batch) != 0) {
        return fail("llama_decode failed on the prompt");
    }
    printf("prompt:");
    for (int i = 0; i < n_prompt; ++i) {
        printf(" %d", tokens[i]);
        fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t) n_vocab, out);
    }
    printf("\ntokens:");
    const float * last = llama_get_logits_ith(ctx, n_prompt - 1);
    for (int g = 0; g < n_gen; ++g) {
        const llama_token next = argmax(last, n_vocab);
        printf(" %d", next);
        batch.token[0] = next;
        batch.pos[0] = n_prompt + g;
        batch.logits[0] = 1;
        batch.n_tokens = 1;
        if (llama_decode(ctx, batch) != 0) {
            return fail("llama_decode failed on a generated token");
        }
        last = llama_get_logits_ith(ctx, 0);
        fwrite(last, sizeof(float), (size_t) n_vocab, out);
    }
    printf("\n");
    if (fclose(out) != 0) {
        return fail("cannot write the output file");
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    free(tokens);
    llama_backend_free();
    return 0;
}
