// Berth's binding to llama.cpp's C API (include/llama.h), called by dev.berth.llm.LlamaCpp.
//
// Thin on purpose: every decision (which sequences decode together, prefix reuse, stopping) is
// made in Java. Handles are the native pointers as longs; the Java side owns their lifetime.
// Errors come back as a Java IllegalStateException with llama.cpp's reason where it gives one.

#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

#define LOADED_MAX 4096

// The backends llama.cpp loaded ("load_backend: loaded CPU backend from .../libggml-cpu-zen4.so"),
// kept for LlamaCpp.init's answer; the rest of its log goes to stderr only when verbose.
static char loaded[LOADED_MAX];
static int verbose;
// llama.cpp's last error line, for the next exception's message
static char last_error[1024];

static void on_log(enum ggml_log_level level, const char *text, void *user_data) {
  (void)user_data;
  if (text == NULL) {
    return;
  }
  if (strstr(text, "loaded ") != NULL && strstr(text, " backend from ") != NULL) {
    size_t used = strlen(loaded);
    size_t room = LOADED_MAX - used - 1;
    strncat(loaded, text, room);
  }
  if (level == GGML_LOG_LEVEL_ERROR) {
    snprintf(last_error, sizeof last_error, "%s", text);
    size_t n = strlen(last_error);
    while (n > 0 && (last_error[n - 1] == '\n' || last_error[n - 1] == ' ')) {
      last_error[--n] = '\0';
    }
  }
  if (verbose) {
    fputs(text, stderr);
  }
}

static void fail(JNIEnv *env, const char *message) {
  char full[2048];
  if (last_error[0] != '\0') {
    snprintf(full, sizeof full, "%s: %s", message, last_error);
  } else {
    snprintf(full, sizeof full, "%s", message);
  }
  last_error[0] = '\0';
  jclass c = (*env)->FindClass(env, "java/lang/IllegalStateException");
  if (c != NULL) {
    (*env)->ThrowNew(env, c, full);
  }
}

static const struct llama_vocab *vocab_of(jlong model) {
  return llama_model_get_vocab((const struct llama_model *)(intptr_t)model);
}

// init(backendDir, verbose) -> a description of the backends and devices loaded
JNIEXPORT jstring JNICALL Java_dev_berth_llm_LlamaCpp_init(JNIEnv *env, jclass cls, jstring dir,
                                                         jboolean be_verbose) {
  (void)cls;
  verbose = be_verbose ? 1 : 0;
  loaded[0] = '\0';
  llama_log_set(on_log, NULL);
  const char *path = (*env)->GetStringUTFChars(env, dir, NULL);
  if (path == NULL) {
    return NULL;
  }
  ggml_backend_load_all_from_path(path);
  (*env)->ReleaseStringUTFChars(env, dir, path);
  llama_backend_init();

  char out[LOADED_MAX + 1024];
  snprintf(out, sizeof out, "%s", loaded);
  size_t n = ggml_backend_dev_count();
  for (size_t i = 0; i < n; i++) {
    ggml_backend_dev_t d = ggml_backend_dev_get(i);
    const char *type;
    switch (ggml_backend_dev_type(d)) {
      case GGML_BACKEND_DEVICE_TYPE_CPU:
        type = "cpu";
        break;
      case GGML_BACKEND_DEVICE_TYPE_GPU:
        type = "gpu";
        break;
      case GGML_BACKEND_DEVICE_TYPE_IGPU:
        type = "igpu";
        break;
      default:
        type = "other";
    }
    size_t used = strlen(out);
    snprintf(out + used, sizeof out - used, "device %s %s: %s\n", type, ggml_backend_dev_name(d),
             ggml_backend_dev_description(d));
  }
  return (*env)->NewStringUTF(env, out);
}

JNIEXPORT jint JNICALL Java_dev_berth_llm_LlamaCpp_gpuDevices(JNIEnv *env, jclass cls) {
  (void)env;
  (void)cls;
  jint gpus = 0;
  size_t n = ggml_backend_dev_count();
  for (size_t i = 0; i < n; i++) {
    enum ggml_backend_dev_type t = ggml_backend_dev_type(ggml_backend_dev_get(i));
    if (t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU) {
      gpus++;
    }
  }
  return gpus;
}

JNIEXPORT jlong JNICALL Java_dev_berth_llm_LlamaCpp_loadModel(JNIEnv *env, jclass cls,
                                                            jstring file, jint gpu_layers) {
  (void)cls;
  struct llama_model_params p = llama_model_default_params();
  p.n_gpu_layers = gpu_layers;
  const char *path = (*env)->GetStringUTFChars(env, file, NULL);
  if (path == NULL) {
    return 0;
  }
  struct llama_model *model = llama_model_load_from_file(path, p);
  (*env)->ReleaseStringUTFChars(env, file, path);
  if (model == NULL) {
    fail(env, "llama.cpp could not load the model file");
    return 0;
  }
  return (jlong)(intptr_t)model;
}

JNIEXPORT void JNICALL Java_dev_berth_llm_LlamaCpp_freeModel(JNIEnv *env, jclass cls,
                                                           jlong model) {
  (void)env;
  (void)cls;
  llama_model_free((struct llama_model *)(intptr_t)model);
}

JNIEXPORT jlong JNICALL Java_dev_berth_llm_LlamaCpp_newContext(JNIEnv *env, jclass cls,
                                                             jlong model, jint n_ctx,
                                                             jint n_seq, jint n_batch,
                                                             jint threads, jint threads_batch) {
  (void)cls;
  struct llama_context_params p = llama_context_default_params();
  p.n_ctx = (uint32_t)n_ctx;
  p.n_seq_max = (uint32_t)n_seq;
  p.n_batch = (uint32_t)n_batch;
  p.n_ubatch = (uint32_t)n_batch;
  p.n_threads = threads;
  p.n_threads_batch = threads_batch;
  p.no_perf = true;
  // each sequence its own share of the cache: sequences of different requests share no prefix
  p.kv_unified = false;
  struct llama_context *ctx = llama_init_from_model((struct llama_model *)(intptr_t)model, p);
  if (ctx == NULL) {
    fail(env, "llama.cpp could not create a context (out of memory for the KV cache?)");
    return 0;
  }
  return (jlong)(intptr_t)ctx;
}

JNIEXPORT void JNICALL Java_dev_berth_llm_LlamaCpp_freeContext(JNIEnv *env, jclass cls,
                                                             jlong ctx) {
  (void)env;
  (void)cls;
  llama_free((struct llama_context *)(intptr_t)ctx);
}

JNIEXPORT jint JNICALL Java_dev_berth_llm_LlamaCpp_contextSize(JNIEnv *env, jclass cls,
                                                             jlong ctx) {
  (void)env;
  (void)cls;
  return (jint)llama_n_ctx_seq((const struct llama_context *)(intptr_t)ctx);
}

// tokenize(model, utf8 bytes, addSpecial, parseSpecial) -> token ids
JNIEXPORT jintArray JNICALL Java_dev_berth_llm_LlamaCpp_tokenize(JNIEnv *env, jclass cls,
                                                               jlong model, jbyteArray text,
                                                               jboolean add_special,
                                                               jboolean parse_special) {
  (void)cls;
  jsize len = (*env)->GetArrayLength(env, text);
  jbyte *bytes = (*env)->GetByteArrayElements(env, text, NULL);
  if (bytes == NULL) {
    return NULL;
  }
  int32_t cap = len + 8;
  llama_token *tokens = malloc(sizeof(llama_token) * (size_t)cap);
  int32_t n = llama_tokenize(vocab_of(model), (const char *)bytes, len, tokens, cap,
                             add_special, parse_special);
  if (n < 0 && n != INT32_MIN) {
    cap = -n;
    llama_token *more = realloc(tokens, sizeof(llama_token) * (size_t)cap);
    if (more != NULL) {
      tokens = more;
      n = llama_tokenize(vocab_of(model), (const char *)bytes, len, tokens, cap, add_special,
                         parse_special);
    }
  }
  (*env)->ReleaseByteArrayElements(env, text, bytes, JNI_ABORT);
  if (n < 0) {
    free(tokens);
    fail(env, "llama.cpp could not tokenize the text");
    return NULL;
  }
  jintArray out = (*env)->NewIntArray(env, n);
  if (out != NULL) {
    (*env)->SetIntArrayRegion(env, out, 0, n, (const jint *)tokens);
  }
  free(tokens);
  return out;
}

// piece(model, token) -> the token's bytes (possibly part of a UTF-8 character); control tokens ""
JNIEXPORT jbyteArray JNICALL Java_dev_berth_llm_LlamaCpp_piece(JNIEnv *env, jclass cls,
                                                             jlong model, jint token) {
  (void)cls;
  char buf[256];
  int32_t n = llama_token_to_piece(vocab_of(model), token, buf, sizeof buf, 0, false);
  char *text = buf;
  char *big = NULL;
  if (n < 0) {
    big = malloc((size_t)-n);
    if (big == NULL) {
      fail(env, "out of memory");
      return NULL;
    }
    n = llama_token_to_piece(vocab_of(model), token, big, -n, 0, false);
    text = big;
  }
  if (n < 0) {
    n = 0;
  }
  jbyteArray out = (*env)->NewByteArray(env, n);
  if (out != NULL) {
    (*env)->SetByteArrayRegion(env, out, 0, n, (const jbyte *)text);
  }
  free(big);
  return out;
}

JNIEXPORT jboolean JNICALL Java_dev_berth_llm_LlamaCpp_isEndOfGeneration(JNIEnv *env, jclass cls,
                                                                       jlong model,
                                                                       jint token) {
  (void)env;
  (void)cls;
  return llama_vocab_is_eog(vocab_of(model), token) ? JNI_TRUE : JNI_FALSE;
}

// chatTemplate(model) -> the model's own template, or null
JNIEXPORT jstring JNICALL Java_dev_berth_llm_LlamaCpp_chatTemplate(JNIEnv *env, jclass cls,
                                                                 jlong model) {
  (void)cls;
  const char *t = llama_model_chat_template((const struct llama_model *)(intptr_t)model, NULL);
  return t == NULL ? NULL : (*env)->NewStringUTF(env, t);
}

// applyTemplate(template or null, roles, contents) -> UTF-8 prompt, or null when the template is
// not one llama.cpp knows
JNIEXPORT jbyteArray JNICALL Java_dev_berth_llm_LlamaCpp_applyTemplate(
    JNIEnv *env, jclass cls, jbyteArray tmpl, jobjectArray roles, jobjectArray contents) {
  (void)cls;
  jsize n = (*env)->GetArrayLength(env, roles);
  struct llama_chat_message *chat = calloc((size_t)n + 1, sizeof *chat);
  char **owned = calloc((size_t)(2 * n + 1), sizeof(char *));
  jbyteArray out = NULL;
  size_t total = 0;
  char *t = NULL;
  if (chat == NULL || owned == NULL) {
    fail(env, "out of memory");
    goto done;
  }
  if (tmpl != NULL) {
    jsize len = (*env)->GetArrayLength(env, tmpl);
    t = malloc((size_t)len + 1);
    (*env)->GetByteArrayRegion(env, tmpl, 0, len, (jbyte *)t);
    t[len] = '\0';
  }
  for (jsize i = 0; i < n; i++) {
    for (int k = 0; k < 2; k++) {
      jbyteArray s = (jbyteArray)(*env)->GetObjectArrayElement(env, k == 0 ? roles : contents, i);
      jsize len = (*env)->GetArrayLength(env, s);
      char *c = malloc((size_t)len + 1);
      (*env)->GetByteArrayRegion(env, s, 0, len, (jbyte *)c);
      c[len] = '\0';
      owned[2 * i + k] = c;
      total += (size_t)len;
      (*env)->DeleteLocalRef(env, s);
    }
    chat[i].role = owned[2 * i];
    chat[i].content = owned[2 * i + 1];
  }
  int32_t cap = (int32_t)(2 * total + 1024);
  char *buf = malloc((size_t)cap);
  int32_t len = llama_chat_apply_template(t, chat, (size_t)n, true, buf, cap);
  if (len > cap) {
    free(buf);
    cap = len;
    buf = malloc((size_t)cap);
    len = llama_chat_apply_template(t, chat, (size_t)n, true, buf, cap);
  }
  if (len >= 0) {
    out = (*env)->NewByteArray(env, len);
    if (out != NULL) {
      (*env)->SetByteArrayRegion(env, out, 0, len, (const jbyte *)buf);
    }
  }
  free(buf);
done:
  if (owned != NULL) {
    for (jsize i = 0; i < 2 * n; i++) {
      free(owned[i]);
    }
  }
  free(owned);
  free(chat);
  free(t);
  return out;
}

// A batch of the largest size the context takes, reused for every decode.
JNIEXPORT jlong JNICALL Java_dev_berth_llm_LlamaCpp_newBatch(JNIEnv *env, jclass cls,
                                                           jint size) {
  (void)cls;
  struct llama_batch *b = malloc(sizeof *b);
  if (b == NULL) {
    fail(env, "out of memory");
    return 0;
  }
  *b = llama_batch_init(size, 0, 1);
  return (jlong)(intptr_t)b;
}

JNIEXPORT void JNICALL Java_dev_berth_llm_LlamaCpp_freeBatch(JNIEnv *env, jclass cls,
                                                           jlong batch) {
  (void)env;
  (void)cls;
  struct llama_batch *b = (struct llama_batch *)(intptr_t)batch;
  llama_batch_free(*b);
  free(b);
}

// decode(ctx, batch, n, tokens, positions, sequences, outputs) -> llama_decode's status
JNIEXPORT jint JNICALL Java_dev_berth_llm_LlamaCpp_decode(JNIEnv *env, jclass cls, jlong ctx,
                                                        jlong batch, jint n, jintArray tokens,
                                                        jintArray positions,
                                                        jintArray sequences,
                                                        jbooleanArray outputs) {
  (void)cls;
  struct llama_batch *b = (struct llama_batch *)(intptr_t)batch;
  jint *tok = (*env)->GetPrimitiveArrayCritical(env, tokens, NULL);
  jint *pos = (*env)->GetPrimitiveArrayCritical(env, positions, NULL);
  jint *seq = (*env)->GetPrimitiveArrayCritical(env, sequences, NULL);
  jboolean *outs = (*env)->GetPrimitiveArrayCritical(env, outputs, NULL);
  for (jint i = 0; i < n; i++) {
    b->token[i] = tok[i];
    b->pos[i] = pos[i];
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq[i];
    b->logits[i] = outs[i] ? 1 : 0;
  }
  (*env)->ReleasePrimitiveArrayCritical(env, outputs, outs, JNI_ABORT);
  (*env)->ReleasePrimitiveArrayCritical(env, sequences, seq, JNI_ABORT);
  (*env)->ReleasePrimitiveArrayCritical(env, positions, pos, JNI_ABORT);
  (*env)->ReleasePrimitiveArrayCritical(env, tokens, tok, JNI_ABORT);
  b->n_tokens = n;
  return llama_decode((struct llama_context *)(intptr_t)ctx, *b);
}

// Forgets positions [from, end) of a sequence (-1: to the end).
JNIEXPORT jboolean JNICALL Java_dev_berth_llm_LlamaCpp_forget(JNIEnv *env, jclass cls, jlong ctx,
                                                            jint seq, jint from) {
  (void)env;
  (void)cls;
  llama_memory_t mem = llama_get_memory((const struct llama_context *)(intptr_t)ctx);
  return llama_memory_seq_rm(mem, seq, from, -1) ? JNI_TRUE : JNI_FALSE;
}

// newSampler(temperature, topP, seed): greedy at temperature 0, else top-p, temperature, draw
JNIEXPORT jlong JNICALL Java_dev_berth_llm_LlamaCpp_newSampler(JNIEnv *env, jclass cls,
                                                             jfloat temperature, jfloat top_p,
                                                             jlong seed) {
  (void)env;
  (void)cls;
  struct llama_sampler_chain_params p = llama_sampler_chain_default_params();
  p.no_perf = true;
  struct llama_sampler *chain = llama_sampler_chain_init(p);
  if (temperature <= 0) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
  } else {
    if (top_p < 1.0f) {
      llama_sampler_chain_add(chain, llama_sampler_init_top_p(top_p, 1));
    }
    llama_sampler_chain_add(chain, llama_sampler_init_temp(temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist((uint32_t)seed));
  }
  return (jlong)(intptr_t)chain;
}

JNIEXPORT void JNICALL Java_dev_berth_llm_LlamaCpp_freeSampler(JNIEnv *env, jclass cls,
                                                             jlong sampler) {
  (void)env;
  (void)cls;
  llama_sampler_free((struct llama_sampler *)(intptr_t)sampler);
}

// sample(sampler, ctx, i) -> the token drawn from the logits of the batch's i-th token
JNIEXPORT jint JNICALL Java_dev_berth_llm_LlamaCpp_sample(JNIEnv *env, jclass cls, jlong sampler,
                                                        jlong ctx, jint i) {
  (void)env;
  (void)cls;
  return llama_sampler_sample((struct llama_sampler *)(intptr_t)sampler,
                              (struct llama_context *)(intptr_t)ctx, i);
}

// logits(model, ctx, i) -> the vocabulary's logits for the batch's i-th token (an output one)
JNIEXPORT jfloatArray JNICALL Java_dev_berth_llm_LlamaCpp_logits(JNIEnv *env, jclass cls,
                                                               jlong model, jlong ctx, jint i) {
  (void)cls;
  float *l = llama_get_logits_ith((struct llama_context *)(intptr_t)ctx, i);
  if (l == NULL) {
    fail(env, "no logits for that batch entry");
    return NULL;
  }
  int32_t n = llama_vocab_n_tokens(vocab_of(model));
  jfloatArray out = (*env)->NewFloatArray(env, n);
  if (out != NULL) {
    (*env)->SetFloatArrayRegion(env, out, 0, n, l);
  }
  return out;
}
