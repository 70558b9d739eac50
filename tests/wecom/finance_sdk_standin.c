/*
 * Test stand-in for Tencent's libWeWorkFinanceSdk_C.so: the same exported functions and data
 * shapes as WeWorkFinanceSdk_C.h, serving an archive the tests write (tests/wecom/finance_standin.py
 * builds this file with the system compiler and writes the archive). Not production code.
 *
 * Init reads the archive's path from $FINANCE_STANDIN_ARCHIVE; every call reads that file again,
 * one instruction per line:
 *   chat SEQ JSON            a GetChatData record (already encrypted by the test), in seq order
 *   media SDKFILEID PATH     a media file GetMediaData serves from PATH in 512 KB chunks
 *   fail FUNCTION CODE       FUNCTION (GetChatData or GetMediaData) returns CODE
 *   errcode CODE ERRMSG      GetChatData succeeds with this errcode in its JSON
 * The secret "bad" makes Init fail. DecryptData reverses the tests' cipher: hex of the message,
 * prefixed with MAGIC, XORed with the random key; a wrong key fails with 10006.
 * StandinLiveObjects() counts the SDKs, slices and media data not yet freed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct WeWorkFinanceSdk_t {
    char *archive_path;
} WeWorkFinanceSdk_t;

typedef struct Slice_t {
    char *buf;
    int len;
} Slice_t;

typedef struct MediaData {
    char *outindexbuf;
    int out_len;
    char *data;
    int data_len;
    int is_finish;
} MediaData_t;

#define CHUNK_BYTES (512 * 1024)
#define MAX_LIMIT 1000
#define MAGIC "STANDIN:"
#define PARAMETER_ERROR 10000
#define SYSTEM_ERROR 10003
#define FILEID_ERROR 10005
#define DECRYPT_ERROR 10006
#define KEY_PARSE_ERROR 10008

static int live_objects = 0;
static char last_proxy[512];
static char last_passwd[512];

int StandinLiveObjects(void) { return live_objects; }
const char *StandinLastProxy(void) { return last_proxy; }
const char *StandinLastPasswd(void) { return last_passwd; }

static void remember_proxy(const char *proxy, const char *passwd) {
    snprintf(last_proxy, sizeof last_proxy, "%s", proxy ? proxy : "");
    snprintf(last_passwd, sizeof last_passwd, "%s", passwd ? passwd : "");
}

/* A growing buffer for GetChatData's JSON. */
typedef struct {
    char *buf;
    size_t len, cap;
} Text;

static void append(Text *text, const char *more) {
    size_t n = strlen(more);
    if (text->len + n + 1 > text->cap) {
        text->cap = (text->len + n + 1) * 2;
        text->buf = realloc(text->buf, text->cap);
    }
    memcpy(text->buf + text->len, more, n + 1);
    text->len += n;
}

static void fill_slice(Slice_t *slice, char *buf, size_t len) {
    free(slice->buf);
    slice->buf = buf;
    slice->len = (int)len;
}

/* Calls `visit` for each line of the archive (newline removed) until it returns non-zero. */
static int scan_archive(const char *path, int (*visit)(char *line, void *state), void *state) {
    FILE *file = fopen(path, "r");
    if (!file) return SYSTEM_ERROR;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int result = 0;
    while (!result && (n = getline(&line, &cap, file)) != -1) {
        if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
        result = visit(line, state);
    }
    free(line);
    fclose(file);
    return result;
}

/* "fail FUNCTION CODE" for this function: its code, else 0. */
static int injected_failure(const char *line, const char *function) {
    char name[64];
    int code;
    if (sscanf(line, "fail %63s %d", name, &code) == 2 && strcmp(name, function) == 0) return code;
    return 0;
}

WeWorkFinanceSdk_t *NewSdk(void) {
    live_objects++;
    return calloc(1, sizeof(WeWorkFinanceSdk_t));
}

void DestroySdk(WeWorkFinanceSdk_t *sdk) {
    if (!sdk) return;
    free(sdk->archive_path);
    free(sdk);
    live_objects--;
}

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    const char *path = getenv("FINANCE_STANDIN_ARCHIVE");
    if (!sdk || !corpid || !*corpid || !secret || !*secret || strcmp(secret, "bad") == 0)
        return PARAMETER_ERROR;
    if (!path) return SYSTEM_ERROR;
    free(sdk->archive_path);
    sdk->archive_path = strdup(path);
    return 0;
}

typedef struct {
    unsigned long long after;
    unsigned int limit, count;
    int failure;
    Text reply;
} ChatScan;

static int visit_chat(char *line, void *state) {
    ChatScan *scan = state;
    unsigned long long seq;
    int offset = 0, errcode;
    char errmsg[256];
    if ((scan->failure = injected_failure(line, "GetChatData"))) return 1;
    if (sscanf(line, "errcode %d %255[^\n]", &errcode, errmsg) == 2) {
        char json[512];
        snprintf(json, sizeof json, "{\"errcode\":%d,\"errmsg\":\"%s\",\"chatdata\":[", errcode, errmsg);
        scan->reply.len = 0;
        append(&scan->reply, json);
        return 1;
    }
    if (sscanf(line, "chat %llu %n", &seq, &offset) == 1 && offset > 0 && seq > scan->after &&
        scan->count < scan->limit) {
        if (scan->count++) append(&scan->reply, ",");
        append(&scan->reply, line + offset);
    }
    return 0;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit,
                const char *proxy, const char *passwd, int timeout, Slice_t *chatDatas) {
    (void)timeout;
    if (!sdk || !sdk->archive_path || !chatDatas || limit > MAX_LIMIT) return PARAMETER_ERROR;
    remember_proxy(proxy, passwd);
    ChatScan scan = {seq, limit, 0, 0, {NULL, 0, 0}};
    append(&scan.reply, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[");
    int result = scan_archive(sdk->archive_path, visit_chat, &scan);
    if (scan.failure || result == SYSTEM_ERROR) {
        free(scan.reply.buf);
        return scan.failure ? scan.failure : SYSTEM_ERROR;
    }
    append(&scan.reply, "]}");
    fill_slice(chatDatas, scan.reply.buf, scan.reply.len);
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    if (!encrypt_key || !encrypt_msg || !msg) return PARAMETER_ERROR;
    size_t key_len = strlen(encrypt_key), hex_len = strlen(encrypt_msg), magic = strlen(MAGIC);
    if (key_len == 0) return KEY_PARSE_ERROR;
    if (hex_len % 2) return DECRYPT_ERROR;
    size_t len = hex_len / 2;
    char *plain = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        int high = hex_value(encrypt_msg[2 * i]), low = hex_value(encrypt_msg[2 * i + 1]);
        if (high < 0 || low < 0) {
            free(plain);
            return DECRYPT_ERROR;
        }
        plain[i] = (char)(((high << 4) | low) ^ encrypt_key[i % key_len]);
    }
    plain[len] = '\0';
    if (len < magic || memcmp(plain, MAGIC, magic) != 0) {
        free(plain);
        return DECRYPT_ERROR;
    }
    memmove(plain, plain + magic, len - magic + 1);
    fill_slice(msg, plain, len - magic);
    return 0;
}

typedef struct {
    const char *sdkfileid;
    char path[1024];
    int failure, found;
} MediaScan;

static int visit_media(char *line, void *state) {
    MediaScan *scan = state;
    char fileid[512];
    int offset = 0;
    if ((scan->failure = injected_failure(line, "GetMediaData"))) return 1;
    if (sscanf(line, "media %511s %n", fileid, &offset) == 1 && offset > 0 &&
        strcmp(fileid, scan->sdkfileid) == 0) {
        snprintf(scan->path, sizeof scan->path, "%s", line + offset);
        scan->found = 1;
        return 1;
    }
    return 0;
}

int GetMediaData(WeWorkFinanceSdk_t *sdk, const char *indexbuf, const char *sdkFileid,
                 const char *proxy, const char *passwd, int timeout, MediaData_t *media_data) {
    (void)timeout;
    if (!sdk || !sdk->archive_path || !sdkFileid || !media_data) return PARAMETER_ERROR;
    remember_proxy(proxy, passwd);
    MediaScan scan = {sdkFileid, "", 0, 0};
    if (scan_archive(sdk->archive_path, visit_media, &scan) == SYSTEM_ERROR) return SYSTEM_ERROR;
    if (scan.failure) return scan.failure;
    if (!scan.found) return FILEID_ERROR;

    long start = (indexbuf && *indexbuf) ? strtol(indexbuf, NULL, 10) : 0;
    FILE *file = fopen(scan.path, "rb");
    if (!file) return SYSTEM_ERROR;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    if (start < 0 || start > size) {
        fclose(file);
        return PARAMETER_ERROR;
    }
    fseek(file, start, SEEK_SET);
    char *data = malloc(CHUNK_BYTES);
    size_t n = fread(data, 1, CHUNK_BYTES, file);
    fclose(file);

    char next[32];
    snprintf(next, sizeof next, "%ld", start + (long)n);
    free(media_data->data);
    free(media_data->outindexbuf);
    media_data->data = data;
    media_data->data_len = (int)n;
    media_data->outindexbuf = strdup(next);
    media_data->out_len = (int)strlen(next);
    media_data->is_finish = start + (long)n >= size;
    return 0;
}

Slice_t *NewSlice(void) {
    live_objects++;
    return calloc(1, sizeof(Slice_t));
}

void FreeSlice(Slice_t *slice) {
    if (!slice) return;
    free(slice->buf);
    free(slice);
    live_objects--;
}

char *GetContentFromSlice(Slice_t *slice) { return slice ? slice->buf : NULL; }
int GetSliceLen(Slice_t *slice) { return slice ? slice->len : 0; }

MediaData_t *NewMediaData(void) {
    live_objects++;
    return calloc(1, sizeof(MediaData_t));
}

void FreeMediaData(MediaData_t *media_data) {
    if (!media_data) return;
    free(media_data->data);
    free(media_data->outindexbuf);
    free(media_data);
    live_objects--;
}

char *GetOutIndexBuf(MediaData_t *media_data) { return media_data ? media_data->outindexbuf : NULL; }
char *GetData(MediaData_t *media_data) { return media_data ? media_data->data : NULL; }
int GetIndexLen(MediaData_t *media_data) { return media_data ? media_data->out_len : 0; }
int GetDataLen(MediaData_t *media_data) { return media_data ? media_data->data_len : 0; }
int IsMediaDataFinish(MediaData_t *media_data) { return media_data ? media_data->is_finish : 0; }
