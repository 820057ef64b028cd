/*
 * wc.c: a hermetic task written in C. For each file named on the command line (a guest
 * path such as /in/notes.txt), counts its lines, words and bytes, and writes one line per
 * file to /out/wc.txt: "<lines> <words> <bytes> <path>", then a total line.
 *
 * Build it with Debian's clang and wasi-libc:
 *
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -o wc.wasm wc.c
 *
 * With -DHERMETIC_HOST_CALLS it also reports its progress through hermetic's host calls
 * (the `hermetic_v1` import module); without, it needs nothing but WASI and runs under any
 * WASI host, `wasmtime run --dir . wc.wasm ...` included.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#ifdef HERMETIC_HOST_CALLS
__attribute__((import_module("hermetic_v1"), import_name("progress")))
void hermetic_progress(long long done, long long total);
#define PROGRESS(done, total) hermetic_progress((done), (total))
#else
#define PROGRESS(done, total) ((void)0)
#endif

struct counts {
    unsigned long long lines, words, bytes;
};

static int count(const char *path, struct counts *c) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open %s\n", path);
        return -1;
    }
    int ch, in_word = 0;
    while ((ch = fgetc(f)) != EOF) {
        c->bytes++;
        if (ch == '\n') c->lines++;
        if (isspace(ch)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            c->words++;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        fprintf(stderr, "error: cannot read %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: wc FILE...\n");
        return 2;
    }
    FILE *out = fopen("/out/wc.txt", "w");
    if (!out) {
        fprintf(stderr, "error: cannot create /out/wc.txt\n");
        return 1;
    }
    struct counts total = {0, 0, 0};
    for (int i = 1; i < argc; i++) {
        struct counts c = {0, 0, 0};
        if (count(argv[i], &c) != 0) return 1;
        fprintf(out, "%llu %llu %llu %s\n", c.lines, c.words, c.bytes, argv[i]);
        total.lines += c.lines;
        total.words += c.words;
        total.bytes += c.bytes;
        PROGRESS(i, argc - 1);
    }
    fprintf(out, "%llu %llu %llu total\n", total.lines, total.words, total.bytes);
    if (fclose(out) != 0) {
        fprintf(stderr, "error: cannot write /out/wc.txt\n");
        return 1;
    }
    return 0;
}
