/* bin/entrypoint of the bundle: a static executable (no ELF interpreter, no shell needed).
 *
 * It finds the tree it was started from (/proc/self/exe, else argv[0]) and replaces itself
 * (execv: no process is left between PID 1 and the app) with the interpreter inside:
 *   - at BUNDLE_HOME (/opt/entrypoint): ROOT/libexec/entrypoint directly, whose ELF interpreter
 *     is ROOT/lib/LDSO, an absolute path the kernel needs;
 *   - anywhere else: through the bundled dynamic loader, ROOT/lib/LDSO ROOT/libexec/entrypoint,
 *     which ignores the ELF interpreter path, so the tree works wherever it is copied.
 * The environment is passed on untouched: nothing is added for the app to inherit.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BUNDLE_HOME
#define BUNDLE_HOME "/opt/entrypoint"
#endif
#ifndef LDSO
#define LDSO "ld-linux-x86-64.so.2"
#endif

static void say(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* ROOT = the directory two levels above the executable (ROOT/bin/entrypoint). */
static int root_of(char *path) {
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(path, '/');
        if (slash == NULL) return -1;
        *slash = '\0';
    }
    if (path[0] == '\0') strcpy(path, "/");
    return 0;
}

int main(int argc, char **argv) {
    static char root[PATH_MAX], prog[PATH_MAX], ldso[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
    if (n > 0) {
        root[n] = '\0';
    } else if (argc > 0 && argv[0][0] == '/' && realpath(argv[0], root) != NULL) {
        /* no /proc (a chroot): argv[0], when it is a path */
    } else {
        strcpy(root, BUNDLE_HOME "/bin/entrypoint");
    }
    if (root_of(root) != 0 || strlen(root) + sizeof "/libexec/entrypoint" + sizeof LDSO + 8 > PATH_MAX) {
        say("entrypoint: cannot tell where the bundle is installed\n");
        return 127;
    }
    strcpy(prog, root);
    strcat(prog, "/libexec/entrypoint");
    strcpy(ldso, root);
    strcat(ldso, "/lib/" LDSO);

    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL) return 127;
    const char *what;
    if (strcmp(root, BUNDLE_HOME) == 0) {
        args[0] = prog;
        for (int i = 1; i < argc; i++) args[i] = argv[i];
        what = prog;
        execv(prog, args);
    } else {
        args[0] = ldso;
        args[1] = prog;
        for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
        what = ldso;
        execv(ldso, args);
    }
    int err = errno;
    say("entrypoint: cannot start the bundle's interpreter ");
    say(what);
    say(": ");
    say(strerror(err));
    say(" (the tree must be copied whole: bin/, lib/ and libexec/ of " BUNDLE_HOME ")\n");
    return err == ENOENT ? 127 : 126;
}
