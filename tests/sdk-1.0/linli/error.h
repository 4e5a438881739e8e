/*
 * linli/error.h — the result codes every linli call returns.
 *
 * A call succeeds with LINLI_OK (0) and fails with one of the small negative
 * codes below. linli_strerror() turns a code into a short English phrase that
 * never changes within an SDK major version. Codes are only appended.
 */
#ifndef LINLI_ERROR_H
#define LINLI_ERROR_H

/* X(name, value, phrase) — since 1.0 unless noted. */
#define LINLI_ERRORS(X)                                                        \
	X(LINLI_OK, 0, "ok")                                                   \
	X(LINLI_EINVAL, -1, "invalid argument")                                \
	X(LINLI_ENOMEM, -2, "out of memory")                                   \
	X(LINLI_ENOENT, -3, "not found")                                       \
	X(LINLI_EEXIST, -4, "already exists")                                  \
	X(LINLI_EPERM, -5, "permission denied")                                \
	X(LINLI_EAUTH, -6, "not authenticated")                                \
	X(LINLI_EIO, -7, "input/output error")                                 \
	X(LINLI_EFULL, -8, "storage full")                                     \
	X(LINLI_ETIMEDOUT, -9, "timed out")                                    \
	X(LINLI_EBUSY, -10, "busy")                                            \
	X(LINLI_ESCHEMA, -11, "schema violation")                              \
	X(LINLI_EVERSION, -12, "version mismatch")                             \
	X(LINLI_EPROTO, -13, "malformed message")                              \
	X(LINLI_E2BIG, -14, "too large")                                       \
	X(LINLI_ENOTSUP, -15, "not supported")                                 \
	X(LINLI_ECONFIG, -16, "bad configuration")                             \
	X(LINLI_ELIMIT, -17, "limit exceeded")                                 \
	X(LINLI_ESTATE, -18, "wrong state")                                    \
	X(LINLI_ETYPE, -19, "wrong type")                                      \
	X(LINLI_ECORRUPT, -20, "corrupt data")

enum linli_error {
#define LINLI_ERR_ENUM_(n, v, s) n = v,
	LINLI_ERRORS(LINLI_ERR_ENUM_)
#undef LINLI_ERR_ENUM_
};

/* Name of the last code, so that callers can range-check. */
#define LINLI_ERROR_MIN LINLI_ECORRUPT

/*
 * linli_strerror — a static, never-freed phrase for code `rc`.
 * Unknown codes give "unknown error". Header-only so that a plugin links no
 * kernel symbol for it.
 */
static inline const char *linli_strerror(int rc)
{
	switch (rc) {
#define LINLI_ERR_CASE_(n, v, s)                                               \
	case v:                                                                \
		return s;
		LINLI_ERRORS(LINLI_ERR_CASE_)
#undef LINLI_ERR_CASE_
	}
	return "unknown error";
}

/*
 * linli_errname — the symbolic name ("LINLI_ENOENT") of code `rc`, used in
 * JSON replies so that scripts can match on a stable word.
 */
static inline const char *linli_errname(int rc)
{
	switch (rc) {
#define LINLI_ERR_NAME_(n, v, s)                                               \
	case v:                                                                \
		return #n;
		LINLI_ERRORS(LINLI_ERR_NAME_)
#undef LINLI_ERR_NAME_
	}
	return "LINLI_EUNKNOWN";
}

#endif
