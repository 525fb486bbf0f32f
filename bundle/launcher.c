/* bin/entrypoint of the bundle: a static executable (no ELF interpreter, no shell needed).
 *
 * It finds the tree it was started from (/proc/self/exe, else argv[0]) and replaces itself
 * (execve: no process is left between PID 1 and the app) with the interpreter inside:
 *   - at BUNDLE_HOME (/opt/entrypoint): ROOT/libexec/entrypoint directly, whose ELF interpreter
 *     is ROOT/lib/LDSO, an absolute path the kernel needs;
 *   - anywhere else: through the bundled dynamic loader, ROOT/lib/LDSO ROOT/libexec/entrypoint,
 *     which ignores the ELF interpreter path, so the tree works wherever it is copied.
 * The environment is passed on untouched: nothing is added for the app to inherit.
 *
 * On x86_64 it needs no C library at all (four system calls, a few KiB instead of glibc's static
 * 680 KiB; build with -nostdlib); elsewhere the same code runs on the static C library.
 */
#ifndef BUNDLE_HOME
#define BUNDLE_HOME "/opt/entrypoint"
#endif
#ifndef LDSO
#define LDSO "ld-linux-x86-64.so.2"
#endif
#define MAXPATH 4096
#define AT_FDCWD (-100)

#if defined(__x86_64__) && defined(NOLIBC)
static long sys4(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}
#define SYS_write 1
#define SYS_execve 59
#define SYS_exit 60
#define SYS_readlinkat 267
static long sys_write(int fd, const char *s, unsigned long n) { return sys4(SYS_write, fd, (long)s, (long)n, 0); }
static long sys_readlink(const char *p, char *buf, unsigned long n) {
    return sys4(SYS_readlinkat, AT_FDCWD, (long)p, (long)buf, (long)n);
}
static long sys_execve(const char *p, char **argv, char **envp) {
    return sys4(SYS_execve, (long)p, (long)argv, (long)envp, 0);
}
static void sys_exit(int code) { for (;;) sys4(SYS_exit, code, 0, 0, 0); }
#else
#include <errno.h>
#include <unistd.h>
static long sys_write(int fd, const char *s, unsigned long n) { return write(fd, s, n); }
static long sys_readlink(const char *p, char *buf, unsigned long n) {
    long r = readlink(p, buf, n);
    return r < 0 ? -errno : r;
}
static long sys_execve(const char *p, char **argv, char **envp) {
    execve(p, argv, envp);
    return -errno;
}
__attribute__((unused)) static void sys_exit(int code) { _exit(code); }
#endif

static unsigned long length(const char *s) {
    unsigned long n = 0;
    while (s[n]) n++;
    return n;
}

static void say(const char *s) {
    unsigned long n = length(s);
    while (n > 0) {
        long w = sys_write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (unsigned long)w;
    }
}

/* dest = a + b, bounded by MAXPATH; 0 if it did not fit. */
static int join(char *dest, const char *a, const char *b) {
    unsigned long la = length(a), lb = length(b);
    if (la + lb + 1 > MAXPATH) return 0;
    for (unsigned long i = 0; i < la; i++) dest[i] = a[i];
    for (unsigned long i = 0; i <= lb; i++) dest[la + i] = b[i];
    return 1;
}

static int same(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static const char *reason(long err) {
    switch (-err) {
    case 2: return "No such file or directory";
    case 13: return "Permission denied";
    case 8: return "Exec format error";
    case 20: return "Not a directory";
    default: return "cannot execute";
    }
}

static int launch(int argc, char **argv, char **envp) {
    static char root[MAXPATH], prog[MAXPATH], ldso[MAXPATH];
    long n = sys_readlink("/proc/self/exe", root, MAXPATH - 1);
    if (n > 0) {
        root[n] = '\0';
    } else if (argc > 0 && argv[0][0] == '/' && length(argv[0]) < MAXPATH) {
        join(root, argv[0], "");  /* no /proc (a chroot): argv[0], when it is a path */
    } else {
        join(root, BUNDLE_HOME "/bin/entrypoint", "");
    }
    for (int up = 0; up < 2; up++) {  /* ROOT/bin/entrypoint -> ROOT */
        long last = -1;
        for (long i = 0; root[i]; i++)
            if (root[i] == '/') last = i;
        if (last < 0) {
            say("entrypoint: cannot tell where the bundle is installed\n");
            return 127;
        }
        root[last] = '\0';
    }
    if (!join(prog, root, "/libexec/entrypoint") || !join(ldso, root, "/lib/" LDSO)) {
        say("entrypoint: the bundle's path is too long\n");
        return 127;
    }
    char *args[argc + 3];
    const char *what;
    long err;
    if (same(root, BUNDLE_HOME)) {
        args[0] = prog;
        for (int i = 1; i < argc; i++) args[i] = argv[i];
        args[argc > 0 ? argc : 1] = 0;
        what = prog;
        err = sys_execve(prog, args, envp);
    } else {
        args[0] = ldso;
        args[1] = prog;
        for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
        args[(argc > 0 ? argc : 1) + 1] = 0;
        what = ldso;
        err = sys_execve(ldso, args, envp);
    }
    say("entrypoint: cannot start the bundle's interpreter ");
    say(what);
    say(": ");
    say(reason(err));
    say(" (the tree must be copied whole: bin/, lib/ and libexec/ of " BUNDLE_HOME ")\n");
    return err == -2 ? 127 : 126;
}

#if defined(__x86_64__) && defined(NOLIBC)
/* The kernel's initial stack: argc, argv..., NULL, envp..., NULL. */
__attribute__((used)) static void start_c(long *sp) {
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys_exit(launch(argc, argv, argv + argc + 1));
}
__asm__(".text\n.global _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n"
        "\tcall start_c\n\thlt\n");
#else
int main(int argc, char **argv, char **envp) { return launch(argc, argv, envp); }
#endif
