// libFuzzer target: llama's model loader on our build, vocab-only (hparams + tokenizer, no tensor data), then one
// tokenize / detokenize round through the loaded vocabulary.
//
// The input goes through llama_model_load_from_file_ptr on an fmemopen stream (no temp file per execution; mmap
// needs a real file, so it is off). A NULL model (rejected input) is fine; any sanitizer report or abort is a crash.
#include "gguf.h"
#include "llama.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

static void quiet_log(enum ggml_log_level, const char *, void *) {}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    llama_log_set(quiet_log, nullptr);
    ggml_log_set(quiet_log, nullptr);
    llama_backend_init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size == 0) {
        return 0;
    }
    FILE * f = fmemopen(const_cast<uint8_t *>(data), size, "rb");
    if (f == nullptr) {
        return 0;
    }
    llama_model_params params = llama_model_default_params();
    params.vocab_only = true;
    params.load_mode  = LLAMA_LOAD_MODE_NONE;
    llama_model * model = llama_model_load_from_file_ptr(f, params);
    fclose(f);
    if (model == nullptr) {
        return 0;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    static const char text[] = "ROMEO: <s> O, I'll not\n\tpunctuation... 123 \xc3\xa9t\xc3\xa9";
    std::vector<llama_token> tokens(256);
    const int32_t n = llama_tokenize(vocab, text, (int32_t) sizeof(text) - 1, tokens.data(), (int32_t) tokens.size(), true, true);
    if (n > 0) {
        std::vector<char> out(4096);
        llama_detokenize(vocab, tokens.data(), n, out.data(), (int32_t) out.size(), false, true);
    }
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    char piece[256];
    for (int32_t id = 0; id < n_vocab && id < 64; id++) {
        llama_token_to_piece(vocab, id, piece, (int32_t) sizeof(piece), 0, true);
    }
    llama_model_free(model);
    return 0;
}
