#ifndef CAIRN_CLIBGIT2_SHIM_H
#define CAIRN_CLIBGIT2_SHIM_H

#include <git2.h>

/* What Swift cannot call directly: the *_INIT macros and the variadic git_libgit2_opts. */

static inline git_fetch_options cairn_fetch_options_init(void) {
    git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
    return opts;
}

static inline git_push_options cairn_push_options_init(void) {
    git_push_options opts = GIT_PUSH_OPTIONS_INIT;
    return opts;
}

static inline git_diff_options cairn_diff_options_init(void) {
    git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
    return opts;
}

static inline git_diff_find_options cairn_diff_find_options_init(void) {
    git_diff_find_options opts = GIT_DIFF_FIND_OPTIONS_INIT;
    return opts;
}

static inline git_remote_callbacks cairn_remote_callbacks_init(void) {
    git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
    return cbs;
}

static inline git_remote_create_options cairn_remote_create_options_init(void) {
    git_remote_create_options opts = GIT_REMOTE_CREATE_OPTIONS_INIT;
    return opts;
}

static inline int cairn_opts_set_search_path(int level, const char *path) {
    return git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path);
}

static inline int cairn_opts_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

static inline int cairn_opts_enable_caching(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_CACHING, enabled);
}

static inline int cairn_opts_set_cache_max_size(ssize_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, bytes);
}

static inline int cairn_opts_set_cache_object_limit(git_object_t type, size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, type, bytes);
}

#endif
