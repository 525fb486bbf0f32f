/* libexec/entrypoint of the bundle: CPython embedded, running `python -I -S -m entrypoint ARGS`.
 *
 * Linked against the bundled libpython (DT_RPATH $ORIGIN/../lib), started by bin/entrypoint.
 * One process: it is the entrypoint itself (PID 1 under `run`), never a launcher of it.
 *   - isolated: no PYTHON* variable of the image is read (PYTHONHOME, PYTHONPATH, ...);
 *   - home and sys.path are the tree's own, found from /proc/self/exe (libexec/ or lib/ld.so are
 *     both one level below ROOT), else from argv[0];
 *   - no site import: sys.path is the tree's own, in this order: the stdlib PID 1 imports (plain
 *     files), lib-dynload, site-packages, then a zip of all other bytecode (PID 1 never opens it);
 *   - no bytecode writes (nothing is written in the tree: a read-only root works);
 *   - no C-locale coercion (PEP 538 would setenv LC_CTYPE, which the app would inherit): in the C
 *     locale, UTF-8 mode (PEP 540) gives the same encodings instead, without touching environ.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#ifndef BUNDLE_HOME
#define BUNDLE_HOME "/opt/entrypoint"
#endif
#ifndef PYVER
#define PYVER "3.11"
#endif
#ifndef PYZIP
#define PYZIP "python311.zip"
#endif

static void find_root(const char *argv0, char *root) {
    ssize_t n = readlink("/proc/self/exe", root, PATH_MAX - 1);
    if (n > 0) {
        root[n] = '\0';
    } else if (argv0 != NULL && argv0[0] == '/' && strlen(argv0) < PATH_MAX) {
        strcpy(root, argv0);
    } else {
        strcpy(root, BUNDLE_HOME "/libexec/entrypoint");
    }
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(root, '/');
        if (slash == NULL) { strcpy(root, BUNDLE_HOME); return; }
        *slash = '\0';
    }
    if (root[0] == '\0') strcpy(root, "/");
}

static void check(PyStatus status, PyConfig *config) {
    if (PyStatus_Exception(status)) {
        if (config != NULL) PyConfig_Clear(config);
        Py_ExitStatusException(status);
    }
}

static void add_path(PyConfig *config, const char *root, const char *rest) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s%s", root, rest);
    wchar_t *wide = Py_DecodeLocale(path, NULL);
    if (wide == NULL) check(PyStatus_NoMemory(), config);
    check(PyWideStringList_Append(&config->module_search_paths, wide), config);
    PyMem_RawFree(wide);
}

int main(int argc, char **argv) {
    static char root[PATH_MAX], exe[PATH_MAX + 32];
    find_root(argc > 0 ? argv[0] : NULL, root);
    snprintf(exe, sizeof exe, "%s/bin/entrypoint", root);

    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.isolated = 1;
    pre.use_environment = 0;
    pre.parse_argv = 0;
    pre.coerce_c_locale = 0;
    pre.coerce_c_locale_warn = 0;
    check(Py_PreInitialize(&pre), NULL);

    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.isolated = 1;
    config.use_environment = 0;
    config.user_site_directory = 0;
    config.safe_path = 1;
    config.site_import = 0;
    config.write_bytecode = 0;
    config.parse_argv = 0;
    config.pathconfig_warnings = 0;
    check(PyConfig_SetBytesString(&config, &config.home, root), &config);
    check(PyConfig_SetBytesString(&config, &config.program_name, exe), &config);
    check(PyConfig_SetBytesString(&config, &config.executable, exe), &config);
    check(PyConfig_SetString(&config, &config.run_module, L"entrypoint"), &config);
    check(PyConfig_SetBytesArgv(&config, argc, argv), &config);
    config.module_search_paths_set = 1;
    add_path(&config, root, "/lib/python" PYVER);
    add_path(&config, root, "/lib/python" PYVER "/lib-dynload");
    add_path(&config, root, "/lib/python" PYVER "/site-packages");
    add_path(&config, root, "/lib/" PYZIP);
    check(Py_InitializeFromConfig(&config), &config);
    PyConfig_Clear(&config);
    return Py_RunMain();
}
