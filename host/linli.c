/*
 * linli — the console. One command per run, or an interactive shell.
 *
 * The console is thin: it sends the words typed (argv) to linlid over the
 * control protocol (proto.h) and prints the reply's data, as one JSON document
 * with --json or as aligned text otherwise. Commands therefore live in the
 * daemon, plugin commands included, and the console never needs updating for
 * a new one. Exit codes: 0 ok, 1 refused or failed, 2 usage.
 */
#include <editline/readline.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <locale.h>
#include <stdint.h>
#include <time.h>
#include <wchar.h>
#include <unistd.h>

#include "json.h"
#include "linli/error.h"
#include "mp.h"
#include "proto.h"

/* The demo's (tools/demo, from a source tree) when ./var/linlid.sock exists, else the installed daemon's. */
#define DEMO_SOCKET "ipc://var/linlid.sock"
#ifndef LINLI_SYSTEM_SOCKET
#define LINLI_SYSTEM_SOCKET "ipc:///run/linli/linlid.sock"
#endif
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

struct console {
	const char *addr;
	bool json;
	const char *tls_ca;	     /* --tls-ca / $LINLI_TLS_CA, for tls+tcp:// */
	const char *tls_server_name; /* --tls-server-name / $LINLI_TLS_SERVER_NAME */
	nng_socket sock;
	bool open;
	char **words; /* command names for completion */
	int n_words;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: linli [--socket ADDR] [TLS OPTIONS] [--json] [--utc] COMMAND [ARGS...]\n"
		   "       linli [--socket ADDR] [TLS OPTIONS]            (interactive shell)\n"
		   "  --socket ADDR  linlid's control address: ipc://PATH, tcp://HOST:PORT or\n"
		   "                 tls+tcp://HOST:PORT (default $LINLI_SOCKET, else the demo's\n"
		   "                 %s when ./var/linlid.sock exists, else %s)\n"
		   "  --json         print one JSON document (times as ms since the epoch)\n"
		   "  --utc          print times in UTC (default: local time, ISO 8601)\n"
		   "  --tls-ca FILE  PEM CA certificate(s) that sign linlid's certificate, for\n"
		   "                 tls+tcp:// (default $LINLI_TLS_CA, else %s)\n"
		   "  --tls-server-name NAME  the name linlid's certificate must carry, when it\n"
		   "                 is not HOST (default $LINLI_TLS_SERVER_NAME)\n"
		   "Try 'linli help' for the commands.\n",
		DEMO_SOCKET, LINLI_SYSTEM_SOCKET, SYSTEM_CA_FILE);
}

/*
 * tls+tcp://: the server's certificate must chain to the CA file and carry
 * the expected name (--tls-server-name, else the address's host); anything
 * else fails the dial before a request is sent. Prints why; returns 0 or -1.
 */
static int dial_tls(struct console *c)
{
	const char *ca = c->tls_ca;
	if (!ca && access(SYSTEM_CA_FILE, R_OK) == 0)
		ca = SYSTEM_CA_FILE;
	if (!ca) {
		fprintf(stderr, "linli: %s needs a CA certificate to verify linlid: give --tls-ca FILE "
				"or set LINLI_TLS_CA\n",
			c->addr);
		return -1;
	}
	nng_url *url = NULL;
	nng_tls_config *tls = NULL;
	nng_dialer d;
	int rv = nng_url_parse(&url, c->addr);
	if (rv != 0) {
		fprintf(stderr, "linli: bad address %s: %s\n", c->addr, nng_strerror(rv));
		return -1;
	}
	const char *name = c->tls_server_name ? c->tls_server_name : url->u_hostname;
	if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0 ||
	    (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_tls_config_server_name(tls, name)) != 0)
		fprintf(stderr, "linli: cannot set up TLS: %s\n", nng_strerror(rv));
	else if ((rv = nng_tls_config_ca_file(tls, ca)) != 0)
		fprintf(stderr, "linli: cannot load CA certificates from %s: %s\n", ca,
			rv == NNG_ECRYPTO ? "not a PEM certificate file" : nng_strerror(rv));
	else if ((rv = nng_dialer_create(&d, c->sock, c->addr)) != 0 ||
		 (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0 ||
		 (rv = nng_dialer_start(d, 0)) != 0) {
		if (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH)
			fprintf(stderr, "linli: TLS verification of linlid at %s failed: its "
					"certificate is not signed by a CA in %s, or does not "
					"name '%s' (see --tls-ca and --tls-server-name)\n",
				c->addr, ca, name);
		else
			fprintf(stderr, "linli: cannot reach linlid at %s: %s\n", c->addr,
				nng_strerror(rv));
	}
	if (tls)
		nng_tls_config_free(tls); /* the dialer holds its own reference */
	nng_url_free(url);
	return rv == 0 ? 0 : -1;
}

static int connect_daemon(struct console *c)
{
	if (c->open)
		return 0;
	int rv = nng_req0_open(&c->sock);
	if (rv == 0) {
		nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, 60000);
		nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, 10000);
		nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		if (strncmp(c->addr, "tls+tcp://", 10) == 0) {
			if (dial_tls(c) != 0) {
				nng_close(c->sock);
				return -1;
			}
		} else
			rv = nng_dial(c->sock, c->addr, NULL, 0);
		if (rv != 0)
			nng_close(c->sock);
	}
	if (rv != 0) {
		fprintf(stderr, "linli: cannot reach linlid at %s: %s\n", c->addr, nng_strerror(rv));
		return -1;
	}
	c->open = true;
	return 0;
}

/* ---- sessions ----
 *
 * `linli login` stores the token in a file only its owner can read:
 * $LINLI_SESSION_FILE, or ~/.config/linli/sessions.json:
 *   {"nodes": {NODE_ID: {"user", "token"}}, "addrs": {ADDRESS: NODE_ID}}
 * Sessions are keyed by the daemon's node id (its login reply names it), so
 * one person holds sessions with several daemons, two daemons both typed as
 * `ipc://./linlid.sock` from two checkouts never log each other out, and
 * `ipc://./x` and `ipc:///abs/x` are the same daemon. ADDRESS is canonical
 * (an ipc path made absolute, its directory resolved). An entry of the
 * earlier format, {ADDRESS as typed: {"user", "token"}}, is still read.
 * $LINLI_SESSION, when set, wins over the file.
 */

/* addr with an ipc:// path made absolute and its directory resolved; else as typed. */
static void canonical_addr(const char *addr, char *out, size_t n)
{
	if (strncmp(addr, "ipc://", 6) != 0 || !addr[6]) {
		snprintf(out, n, "%s", addr);
		return;
	}
	const char *path = addr + 6;
	char full[PATH_MAX], cwd[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	if (path[0] == '/')
		snprintf(full, sizeof full, "%s", path);
	else if (getcwd(cwd, sizeof cwd))
		snprintf(full, sizeof full, "%s/%s", cwd, path);
	else {
		snprintf(out, n, "%s", addr);
		return;
	}
	char *slash = strrchr(full, '/');
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - full), full);
	if (realpath(dir[0] ? dir : "/", real))
		snprintf(out, n, "ipc://%s/%s", strcmp(real, "/") ? real : "", slash + 1);
	else
		snprintf(out, n, "ipc://%s", full);
}

static void session_path(char *out, size_t n)
{
	const char *f = getenv("LINLI_SESSION_FILE");
	const char *home = getenv("HOME");
	if (f && *f)
		snprintf(out, n, "%s", f);
	else
		snprintf(out, n, "%s/.config/linli/sessions.json", home ? home : ".");
}

static json_t *session_load(void)
{
	char p[4096];
	session_path(p, sizeof p);
	json_t *j = json_load_file(p, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

static int session_save(json_t *all)
{
	char p[4096], tmp[4200];
	session_path(p, sizeof p);
	if (!getenv("LINLI_SESSION_FILE")) {
		char d[4096];
		const char *home = getenv("HOME");
		snprintf(d, sizeof d, "%s/.config", home ? home : ".");
		mkdir(d, 0700);
		snprintf(d, sizeof d, "%s/.config/linli", home ? home : ".");
		mkdir(d, 0700);
	}
	snprintf(tmp, sizeof tmp, "%s.%ld", p, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	char *s = json_dumps(all, JSON_INDENT(2));
	size_t n = s ? strlen(s) : 0;
	bool ok = s && write(fd, s, n) == (ssize_t)n && fchmod(fd, 0600) == 0;
	free(s);
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, p) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The session kept for the daemon at addr: by its node id, else an entry of the earlier format. */
static char *session_token(const char *addr)
{
	const char *env = getenv("LINLI_SESSION");
	if (env && *env)
		return strdup(env);
	char canon[PATH_MAX + 16];
	canonical_addr(addr, canon, sizeof canon);
	json_t *all = session_load();
	const char *nid = json_string_value(json_object_get(json_object_get(all, "addrs"), canon));
	const char *t = nid ? json_string_value(json_object_get(
				  json_object_get(json_object_get(all, "nodes"), nid), "token"))
			    : NULL;
	if (!t)
		t = json_string_value(json_object_get(json_object_get(all, addr), "token"));
	char *r = t ? strdup(t) : NULL;
	json_decref(all);
	return r;
}

/* Drop the session of the daemon at addr (its node's, every address leading to it). */
static void session_forget(json_t *all, const char *addr, const char *canon)
{
	json_t *addrs = json_object_get(all, "addrs");
	const char *nid = json_string_value(json_object_get(addrs, canon));
	if (nid) {
		char *id = strdup(nid);
		json_object_del(json_object_get(all, "nodes"), id);
		const char *a;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(addrs, tmp, a, v)
			if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
				json_object_del(addrs, a);
		free(id);
	}
	json_object_del(all, addr); /* the earlier format's */
	json_object_del(all, canon);
}

/* Read a password: from the terminal without echo, or one line of stdin. */
static char *read_password(bool from_stdin)
{
	char buf[1024];
	FILE *in = stdin;
	struct termios old, quiet;
	bool tty = false;
	if (!from_stdin) {
		in = fopen("/dev/tty", "r+");
		if (!in) {
			fprintf(stderr, "linli: no terminal to read a password from; use --password-stdin\n");
			return NULL;
		}
		fputs("password: ", stderr);
		fflush(stderr);
		if (tcgetattr(fileno(in), &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tty = tcsetattr(fileno(in), TCSAFLUSH, &quiet) == 0;
		}
	}
	char *line = fgets(buf, sizeof buf, in);
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (in != stdin)
		fclose(in);
	if (!line)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	char *pw = strdup(buf);
	explicit_bzero(buf, sizeof buf);
	return pw;
}

/* ---- rendering ----
 *
 * For people (without --json): records as aligned fields (nested ones
 * indented), lists as tables, columns aligned by display width (a CJK
 * character takes two columns: the console runs in a UTF-8 locale), times
 * as local ISO 8601 (--utc: in UTC), numbers without binary noise, and an
 * empty list says so. --json prints the daemon's data as it is (raw ms).
 */

static bool show_utc; /* --utc */

/* Columns `s` takes on a terminal; invalid bytes count one each. */
static size_t disp_width(const char *s)
{
	mbstate_t st = {0};
	size_t w = 0, n = strlen(s);
	while (n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, n, &st);
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&st, 0, sizeof st);
			k = 1;
			w++;
		} else {
			if (k == 0)
				k = 1;
			int cw = wcwidth(wc);
			w += cw > 0 ? (size_t)cw : 0;
		}
		s += k;
		n -= k;
	}
	return w;
}

/* Print s cut to `max` columns (an ellipsis marks the cut), padded to `pad` columns. */
static void put_cell(const char *s, size_t max, size_t pad)
{
	mbstate_t st = {0};
	size_t w = 0, n = strlen(s);
	bool cut = disp_width(s) > max;
	while (n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, n, &st);
		int cw = 1;
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&st, 0, sizeof st);
			k = 1;
		} else {
			if (k == 0)
				k = 1;
			cw = wcwidth(wc) > 0 ? wcwidth(wc) : 0;
		}
		if (cut && w + (size_t)cw + 1 > max)
			break;
		fwrite(s, 1, k, stdout);
		w += (size_t)cw;
		s += k;
		n -= k;
	}
	if (cut) {
		fputs("…", stdout);
		w++;
	}
	for (; w < pad; w++)
		putchar(' ');
}

/* A key that holds a time in ms since the epoch: "*_at", "*_time", created, last_seen, … */
static bool time_key(const char *k)
{
	if (!k)
		return false;
	size_t n = strlen(k);
	static const char *const names[] = {"at", "created", "updated", "last_seen", "time", "ts",
					    "when", "expires", "since", "until", "due", "deadline"};
	static const char *const ends[] = {"_at", "_time", "_since", "_until"};
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		size_t e = strlen(ends[i]);
		if (n > e && strcmp(k + n - e, ends[i]) == 0)
			return true;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(k, names[i]) == 0)
			return true;
	return false;
}

/* The text of a scalar for people; a malloc'd string. */
static char *scalar_text(const char *key, const json_t *v)
{
	char buf[64];
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_null(v))
		return strdup("-");
	if (json_is_integer(v) && time_key(key)) {
		json_int_t ms = json_integer_value(v);
		if (ms >= 946684800000LL && ms < 4102444800000LL) { /* 2000..2100: a time */
			time_t t = (time_t)(ms / 1000);
			struct tm tm;
			if (show_utc ? gmtime_r(&t, &tm) != NULL : localtime_r(&t, &tm) != NULL) {
				size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
				if (ms % 1000)
					n += (size_t)snprintf(buf + n, sizeof buf - n, ".%03d",
							      (int)(ms % 1000));
				if (show_utc)
					snprintf(buf + n, sizeof buf - n, "Z");
				else {
					char z[8];
					strftime(z, sizeof z, "%z", &tm); /* +0800 -> +08:00 */
					snprintf(buf + n, sizeof buf - n, "%.3s:%.2s", z, z + 3);
				}
				return strdup(buf);
			}
		}
	}
	if (json_is_real(v)) { /* the shortest text that reads back as the same double */
		double d = json_real_value(v);
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof buf, "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		return strdup(buf);
	}
	if (json_is_array(v)) { /* scalars joined; anything nested stays JSON */
		size_t i;
		json_t *x;
		bool flat = true;
		json_array_foreach(v, i, x) flat &= !json_is_object(x) && !json_is_array(x);
		if (!json_array_size(v))
			return strdup("(none)");
		if (flat) {
			size_t cap = 64, len = 0;
			char *out = malloc(cap);
			if (!out)
				return NULL;
			out[0] = 0;
			json_array_foreach(v, i, x)
			{
				char *t = scalar_text(key, x);
				size_t tl = t ? strlen(t) : 0;
				if (len + tl + 3 > cap) {
					cap = (len + tl + 3) * 2;
					char *o2 = realloc(out, cap);
					if (!o2) {
						free(t);
						break;
					}
					out = o2;
				}
				len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "",
							t ? t : "");
				free(t);
			}
			return out;
		}
	}
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static void print_scalar(const char *key, const json_t *v)
{
	char *s = scalar_text(key, v);
	fputs(s ? s : "?", stdout);
	free(s);
}

/* A record: its fields aligned, nested records indented under their key. */
static void print_table(const json_t *a, int indent);

static void print_map(const json_t *m, int indent)
{
	const char *k;
	json_t *v;
	size_t w = 0;
	json_object_foreach((json_t *)m, k, v) if (disp_width(k) > w) w = disp_width(k);
	json_object_foreach((json_t *)m, k, v)
	{
		printf("%*s", indent, "");
		if (json_is_object(v) && json_object_size(v)) {
			printf("%s\n", k);
			print_map(v, indent + 2);
			continue;
		}
		if (json_is_array(v) && json_is_object(json_array_get(v, 0))) { /* a listing */
			printf("%s\n", k);
			print_table(v, indent + 2);
			continue;
		}
		put_cell(k, SIZE_MAX, w + 2);
		print_scalar(k, v);
		putchar('\n');
	}
}

/* An array of maps prints as a table whose columns are the first map's keys. */
static void print_table(const json_t *a, int indent)
{
	const json_t *first = json_array_get(a, 0);
	size_t ncol = json_object_size(first), nrow = json_array_size(a);
	const char **cols = calloc(ncol, sizeof *cols);
	size_t *w = calloc(ncol, sizeof *w);
	char **cell = calloc(ncol * nrow + 1, sizeof *cell);
	if (!cols || !w || !cell) {
		free(cols);
		free(w);
		free(cell);
		return;
	}
	const char *k;
	json_t *v;
	size_t c = 0, i;
	json_object_foreach((json_t *)first, k, v)
	{
		cols[c] = k;
		w[c++] = disp_width(k);
	}
	json_t *row;
	json_array_foreach(a, i, row) for (c = 0; c < ncol; c++)
	{
		json_t *x = json_object_get(row, cols[c]);
		char *s = x ? scalar_text(cols[c], x) : strdup("-");
		size_t n = s ? disp_width(s) : 0;
		cell[i * ncol + c] = s;
		if (n > w[c])
			w[c] = n > 60 ? 60 : n;
	}
	printf("%*s", indent, "");
	for (c = 0; c < ncol; c++) {
		put_cell(cols[c], 60, c + 1 < ncol ? w[c] + 2 : 0);
	}
	putchar('\n');
	for (i = 0; i < nrow; i++) {
		printf("%*s", indent, "");
		for (c = 0; c < ncol; c++) {
			const char *s = cell[i * ncol + c];
			put_cell(s ? s : "", c + 1 < ncol ? 60 : SIZE_MAX, c + 1 < ncol ? w[c] + 2 : 0);
			free(cell[i * ncol + c]);
		}
		putchar('\n');
	}
	free(cell);
	free(cols);
	free(w);
}

static void print_text(const json_t *d)
{
	if (json_is_null(d))
		printf("ok\n");
	else if (json_is_array(d) && json_array_size(d) == 0)
		printf("(none)\n");
	else if (json_is_object(d))
		print_map(d, 0);
	else if (json_is_array(d) && json_is_object(json_array_get(d, 0)))
		print_table(d, 0);
	else if (json_is_array(d)) {
		size_t i;
		json_t *v;
		json_array_foreach(d, i, v)
		{
			print_scalar(NULL, v);
			putchar('\n');
		}
	} else {
		print_scalar(NULL, d);
		putchar('\n');
	}
}

/* ---- one request ---- */

static char *read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, stdin);
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return buf;
}

/*
 * Send argv, print the reply. Returns the exit code (0, 1). `reply_out`, if
 * given, receives the data as JSON instead of printing.
 */
static int run(struct console *c, int argc, char **argv, json_t **reply_out, const char *input,
	       size_t input_len)
{
	bool json = c->json;
	char *stdin_buf = NULL;
	char **av = calloc((size_t)argc + 1, sizeof *av);
	int ac = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--stdin") == 0 && !stdin_buf && !input) {
			stdin_buf = read_stdin(&input_len);
			input = stdin_buf;
		} else
			av[ac++] = argv[i];
	}
	if (ac == 0) {
		free(av);
		free(stdin_buf);
		return 2;
	}
	if (connect_daemon(c) != 0) {
		free(av);
		free(stdin_buf);
		return 1;
	}
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	char *session = session_token(c->addr);
	msgpack_pack_map(&pk, 2 + (session != NULL) + (input != NULL));
	mp_kv_int(&pk, "v", PROTO_VERSION);
	mp_str(&pk, "argv");
	msgpack_pack_array(&pk, (size_t)ac);
	for (int i = 0; i < ac; i++)
		mp_str(&pk, av[i]);
	if (session)
		mp_kv_str(&pk, "session", session);
	free(session);
	if (input) {
		mp_str(&pk, "input");
		msgpack_pack_str(&pk, input_len);
		msgpack_pack_str_body(&pk, input, input_len);
	}
	free(av);
	free(stdin_buf);

	int code = 1;
	nng_msg *m = NULL;
	int rv = nng_msg_alloc(&m, 0);
	if (rv == 0)
		rv = nng_msg_append(m, b.data, b.size);
	msgpack_sbuffer_destroy(&b);
	if (rv == 0 && (rv = nng_sendmsg(c->sock, m, 0)) != 0)
		nng_msg_free(m);
	if (rv == 0)
		rv = nng_recvmsg(c->sock, &m, 0);
	if (rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT || rv == NNG_ECLOSED) {
		fprintf(stderr,
			"linli: the connection to %s was reset before the reply came; the request "
			"may or may not have run\n",
			c->addr);
		return 1;
	}
	if (rv != 0) {
		fprintf(stderr, "linli: request to %s failed: %s\n", c->addr, nng_strerror(rv));
		return 1;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	char why[160];
	/* A reply can come from any server at --socket: its sizes are checked first. */
	if (mp_check(nng_msg_body(m), nng_msg_len(m), MP_MAX_DEPTH, 0, why, sizeof why) != 0) {
		fprintf(stderr, "linli: malformed reply from %s: %s\n", c->addr, why);
		goto out;
	}
	if (msgpack_unpack_next(&up, nng_msg_body(m), nng_msg_len(m), &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP) {
		fprintf(stderr, "linli: malformed reply from linlid\n");
		goto out;
	}
	const msgpack_object *ok = mp_get(&up.data, "ok");
	if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean) {
		const msgpack_object *d = mp_get(&up.data, "data");
		msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
		json_t *j = json_from_mp(d ? d : &nil);
		code = 0;
		if (reply_out)
			*reply_out = j;
		else if (json) {
			char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_INDENT(2));
			if (s || !j)
				printf("%s\n", s ? s : "null");
			else /* never "null" for a reply that could not be written */
				fprintf(stderr, "linli: the reply could not be written as JSON\n");
			code = s || !j ? 0 : 1;
			free(s);
			json_decref(j);
		} else {
			print_text(j);
			json_decref(j);
		}
	} else {
		json_t *j = json_from_mp(&up.data);
		if (json && !reply_out) {
			char *s = json_dumps(j, JSON_INDENT(2));
			printf("%s\n", s ? s : "{}");
			free(s);
		}
		const char *e = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "linli: %s\n", e ? e : "request failed");
		json_decref(j);
	}
out:
	msgpack_unpacked_destroy(&up);
	nng_msg_free(m);
	return code;
}

/* ---- events tail: the one command that is a loop in the console ---- */

/*
 * `events tail [PATTERN] [--json] [--count N] [--seconds S] [--scope S]`
 * subscribes with `events subscribe`, then long-polls `events next` (each
 * reply a batch of events) and prints one line per event — text, or one JSON
 * object per line with --json — until Ctrl-C, N events or S seconds. Telemetry
 * the daemon had to shed for this subscriber is reported on stderr.
 */
static volatile sig_atomic_t tail_interrupted;

static void tail_on_sigint(int sig)
{
	(void)sig;
	tail_interrupted = 1;
}

static void print_event(const json_t *e, bool json)
{
	if (json) {
		char *s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "null");
		free(s);
		return;
	}
	json_int_t ms = json_integer_value(json_object_get(e, "time"));
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&t, &tm))
		snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(ms % 1000));
	const json_t *pl = json_object_get(e, "payload");
	/* 15 digits: a value typed as 0.42 prints as 0.42 (--json keeps all 17). */
	char *p = pl ? json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
		     : NULL;
	const char *str[4];
	static const char *const keys[] = {"class", "scope", "topic", "publisher"};
	for (int i = 0; i < 4; i++) {
		str[i] = json_string_value(json_object_get(e, keys[i]));
		if (!str[i])
			str[i] = "?";
	}
	printf("%s  %-11s  %s  %s  %s  %s\n", when, str[0], str[1], str[2], str[3],
	       p ? p : "(payload not printable as JSON)");
	free(p);
}

static int tail(struct console *c, int argc, char **argv)
{
	bool json = c->json;
	const char *pattern = NULL, *scope = NULL;
	long long count = -1;
	double seconds = -1;
	for (int i = 2; i < argc; i++) {
		char *end = NULL;
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = strtoll(argv[++i], &end, 10);
			if (*end || count < 1)
				goto usage;
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], &end);
			if (*end || !(seconds > 0))
				goto usage;
		} else if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc)
			scope = argv[++i];
		else if (argv[i][0] == '-' || pattern)
			goto usage;
		else
			pattern = argv[i];
	}
	char *sub[5] = {"events", "subscribe", (char *)(pattern ? pattern : "#"), "--scope",
			(char *)scope};
	json_t *rep = NULL;
	if (run(c, scope ? 5 : 3, sub, &rep, NULL, 0) != 0)
		return 1;
	char id[32], cursor[32] = "0", wait[32];
	snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(rep, "id")));
	json_decref(rep);

	struct sigaction sa = {.sa_handler = tail_on_sigint}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	tail_interrupted = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long long printed = 0, lost = 0;
	int code = 0;
	while (!tail_interrupted && (count < 0 || printed < count)) {
		long wait_ms = 1000;
		if (seconds > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			double left = seconds - (double)(now.tv_sec - t0.tv_sec) -
				      (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
			if (left <= 0)
				break;
			if (left * 1000 < wait_ms)
				wait_ms = (long)(left * 1000) + 1;
		}
		snprintf(wait, sizeof wait, "%ld", wait_ms);
		char *next[6] = {"events", "next", id, cursor, "--wait", wait};
		if (run(c, 6, next, &rep, NULL, 0) != 0) {
			code = 1;
			break;
		}
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(rep, "events"), i, e)
		{
			if (count >= 0 && printed >= count)
				break;
			print_event(e, json);
			printed++;
		}
		fflush(stdout);
		snprintf(cursor, sizeof cursor, "%lld",
			 (long long)json_integer_value(json_object_get(rep, "cursor")));
		long long l = (long long)json_integer_value(json_object_get(rep, "lost"));
		if (l > lost)
			fprintf(stderr, "linli: %lld telemetry events lost (the daemon's queue for "
					"this subscriber was full)\n",
				l - lost);
		lost = l;
		bool busy = json_is_true(json_object_get(rep, "busy"));
		json_decref(rep);
		if (busy)
			usleep(200 * 1000);
	}
	sigaction(SIGINT, &old, NULL);
	char *unsub[3] = {"events", "unsubscribe", id};
	rep = NULL;
	if (run(c, 3, unsub, &rep, NULL, 0) == 0)
		json_decref(rep);
	return code;
usage:
	fprintf(stderr, "usage: linli events tail [PATTERN] [--json] [--count N] [--seconds S] "
			"[--scope S]\n");
	return 2;
}

/* `login USER [--password-stdin]`: the password goes as the request's input. */
static int do_login(struct console *c, int argc, char **argv)
{
	bool from_stdin = false;
	const char *user = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = true;
		else if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else if (!user)
			user = argv[i];
		else
			user = NULL, i = argc;
	}
	if (!user) {
		fprintf(stderr, "usage: linli login USER [--password-stdin]\n");
		return 2;
	}
	char *pw = read_password(from_stdin);
	if (!pw)
		return 1;
	char *av[] = {"login", (char *)user};
	json_t *j = NULL;
	int code = run(c, 2, av, &j, pw, strlen(pw));
	explicit_bzero(pw, strlen(pw));
	free(pw);
	if (code != 0)
		return code;
	const char *tok = json_string_value(json_object_get(j, "token"));
	const char *nid = json_string_value(json_object_get(j, "node_id"));
	char canon[PATH_MAX + 16];
	canonical_addr(c->addr, canon, sizeof canon);
	json_t *all = session_load();
	session_forget(all, c->addr, canon);
	json_t *entry = json_pack("{s:s,s:s}", "user", user, "token", tok ? tok : "");
	if (nid) {
		if (!json_is_object(json_object_get(all, "nodes")))
			json_object_set_new(all, "nodes", json_object());
		if (!json_is_object(json_object_get(all, "addrs")))
			json_object_set_new(all, "addrs", json_object());
		json_object_set_new(json_object_get(all, "nodes"), nid, entry);
		json_object_set_new(json_object_get(all, "addrs"), canon, json_string(nid));
	} else /* a daemon before node ids */
		json_object_set_new(all, canon, entry);
	if (!tok || session_save(all) != 0) {
		fprintf(stderr, "linli: cannot save the session file\n");
		code = 1;
	}
	json_decref(all);
	json_object_del(j, "token"); /* never echo the token */
	if (code == 0) {
		if (c->json) {
			char *s = json_dumps(j, JSON_INDENT(2));
			printf("%s\n", s);
			free(s);
		} else
			printf("logged in as %s (%s at %s) until %s\n", user,
			       json_string_value(json_object_get(j, "role")),
			       json_string_value(json_object_get(j, "scope")),
			       json_string_value(json_object_get(j, "expires")));
	}
	json_decref(j);
	return code;
}

static int do_logout(struct console *c, int argc, char **argv)
{
	int code = run(c, argc, argv, NULL, NULL, 0);
	char canon[PATH_MAX + 16];
	canonical_addr(c->addr, canon, sizeof canon);
	json_t *all = session_load();
	session_forget(all, c->addr, canon);
	session_save(all);
	json_decref(all);
	return code;
}

/*
 * Commands that read their input from stdin when it is not a terminal, as
 * well as with --stdin: `rules test NAME` takes the event so, e.g. from
 * `jq … | linli rules test NAME`. Only for a command given on the command
 * line: in the shell, stdin holds the next commands.
 */
static bool reads_piped_stdin(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "rules") != 0 || strcmp(argv[1], "test") != 0)
		return false;
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--stdin") == 0)
			return false;
	return !isatty(STDIN_FILENO);
}

/* ---- bundles and keys: what the console sends from its own files ---- */

/* A local file whole; NULL with a message. */
static unsigned char *read_local(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "linli: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		fprintf(stderr, "linli: %s: not a regular file within %zu bytes\n", path, max);
		fclose(f);
		return NULL;
	}
	size_t n = (size_t)st.st_size;
	unsigned char *b = malloc(n ? n : 1);
	if (b && fread(b, 1, n, f) != n) {
		fprintf(stderr, "linli: cannot read %s\n", path);
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = n;
	return b;
}

/*
 * `plugins install|upgrade FILE.bundle ...` with a file of this machine: it is
 * sent in chunks (plugins upload begin/chunk, upload.h) — a remote node cannot
 * read the console's files, and a bundle is larger than one request — then
 * the command runs with "@ID" in its place.
 */
static int send_bundle(struct console *c, int argc, char **argv, int at)
{
	size_t len = 0;
	unsigned char *data = sodium_init() < 0 ? NULL : read_local(argv[at], 64u << 20, &len);
	if (!data)
		return 1;
	unsigned char h[32];
	char hex[65], size[32];
	crypto_generichash(h, sizeof h, data, len, NULL, 0);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(size, sizeof size, "%zu", len);
	char *begin[] = {"plugins", "upload", "begin", size, hex};
	json_t *r = NULL;
	if (run(c, 5, begin, &r, NULL, 0) != 0) {
		free(data);
		return 1;
	}
	char id[32];
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")) ?: "");
	size_t chunk = (size_t)json_integer_value(json_object_get(r, "chunk_max"));
	json_decref(r);
	if (!id[0] || chunk == 0) {
		fprintf(stderr, "linli: the node's answer to 'plugins upload begin' has no id\n");
		free(data);
		return 1;
	}
	int code = 0;
	char *b64 = malloc(sodium_base64_encoded_len(chunk, sodium_base64_VARIANT_ORIGINAL));
	for (size_t off = 0; b64 && off < len && code == 0; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		sodium_bin2base64(b64, sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL),
				  data + off, n, sodium_base64_VARIANT_ORIGINAL);
		char offs[32];
		snprintf(offs, sizeof offs, "%zu", off);
		char *ch[] = {"plugins", "upload", "chunk", id, offs};
		json_t *cr = NULL;
		code = run(c, 5, ch, &cr, b64, strlen(b64));
		json_decref(cr);
	}
	free(b64);
	free(data);
	if (code) {
		char *ab[] = {"plugins", "upload", "abort", id};
		json_t *ar = NULL;
		run(c, 4, ab, &ar, NULL, 0);
		json_decref(ar);
		return 1;
	}
	char ref[40];
	snprintf(ref, sizeof ref, "@%s", id);
	char *saved = argv[at];
	argv[at] = ref;
	code = run(c, argc, argv, NULL, NULL, 0);
	argv[at] = saved;
	return code;
}

/* The bundle argument of `plugins install|upgrade` when it is a local FILE.bundle; else 0. */
static int local_bundle_arg(int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[0], "plugins") != 0 ||
	    (strcmp(argv[1], "install") != 0 && strcmp(argv[1], "upgrade") != 0))
		return 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--scope") == 0) { /* its value is no bundle */
			i++;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] == '-')
			continue;
		size_t n = strlen(argv[i]);
		struct stat st;
		if (n > 7 && strcmp(argv[i] + n - 7, ".bundle") == 0 && stat(argv[i], &st) == 0 &&
		    S_ISREG(st.st_mode))
			return i;
		return 0;
	}
	return 0;
}

/* `trust add NAME FILE`: the console reads FILE (its own) and sends its text as input. */
static int trust_add(struct console *c, int argc, char **argv)
{
	int file = 0, n = 0;
	char *av[PROTO_MAX_ARGS];
	for (int i = 0; i < argc && n < PROTO_MAX_ARGS; i++) {
		if (i >= 3 && !file && argv[i][0] != '-')
			file = i;
		else
			av[n++] = argv[i];
	}
	if (!file)
		return run(c, argc, argv, NULL, NULL, 0); /* --stdin, or the node's usage */
	size_t len = 0;
	unsigned char *text = read_local(argv[file], 4096, &len);
	if (!text)
		return 1;
	int code = run(c, n, av, NULL, (const char *)text, len);
	free(text);
	return code;
}

static int dispatch(struct console *c, int argc, char **argv, bool from_shell)
{
	int at = local_bundle_arg(argc, argv);
	if (at)
		return send_bundle(c, argc, argv, at);
	if (argc >= 4 && strcmp(argv[0], "trust") == 0 && strcmp(argv[1], "add") == 0)
		return trust_add(c, argc, argv);
	if (strcmp(argv[0], "login") == 0)
		return do_login(c, argc, argv);
	if (strcmp(argv[0], "logout") == 0)
		return do_logout(c, argc, argv);
	if (argc >= 2 && strcmp(argv[0], "events") == 0 && strcmp(argv[1], "tail") == 0)
		return tail(c, argc, argv);
	if (!from_shell && reads_piped_stdin(argc, argv)) {
		size_t n = 0;
		char *in = read_stdin(&n);
		/* Nothing piped (e.g. </dev/null): the daemon's default event, {}. */
		int code = run(c, argc, argv, NULL, in && n ? in : NULL, n);
		free(in);
		return code;
	}
	return run(c, argc, argv, NULL, NULL, 0);
}

/* ---- interactive shell ---- */

static struct console *shell_console;
static int split(char *line, char **argv, int max);

/*
 * Completion in the shell, by position: the first word from the commands
 * linlid serves (its `help`), the second from that command's own words,
 * then live values from the daemon for the commands that take them
 * (datasets, device ids, plugin and rule names). Candidates without
 * duplicates, rebuilt at each completion.
 */
static struct {
	char **v;
	int n, cap;
} cands;

static void cand_add(const char *w)
{
	if (!w || !*w)
		return;
	for (int i = 0; i < cands.n; i++)
		if (strcmp(cands.v[i], w) == 0)
			return;
	if (cands.n == cands.cap) {
		int cap = cands.cap ? cands.cap * 2 : 64;
		char **nv = realloc(cands.v, (size_t)cap * sizeof *nv);
		if (!nv)
			return;
		cands.v = nv;
		cands.cap = cap;
	}
	char *d = strdup(w);
	if (d)
		cands.v[cands.n++] = d;
}

static void cand_clear(void)
{
	for (int i = 0; i < cands.n; i++)
		free(cands.v[i]);
	cands.n = 0;
}

/* The `key` strings of a listing reply: an array of objects, or one inside an object. */
static void cand_from_listing(const json_t *j, const char *key)
{
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v) if (json_is_array(v)) cand_from_listing(v, key);
		return;
	}
	size_t i;
	json_t *row;
	json_array_foreach(j, i, row) cand_add(json_string_value(json_object_get(row, key)));
}

static void cand_live(struct console *c, int argc, char **argv, const char *key)
{
	json_t *j = NULL;
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
	if (saved >= 0 && null >= 0) /* a refusal (not logged in) must not break the prompt */
		dup2(null, STDERR_FILENO);
	if (run(c, argc, argv, &j, NULL, 0) == 0)
		cand_from_listing(j, key);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (null >= 0)
		close(null);
	json_decref(j);
}

static void cand_build(struct console *c, const char *line, int start)
{
	cand_clear();
	char *copy = strndup(line, (size_t)start), *w[PROTO_MAX_ARGS];
	int n = copy ? split(copy, w, PROTO_MAX_ARGS) : -1;
	if (n == 0) {
		for (int i = 0; i < c->n_words; i++) {
			char first[128];
			snprintf(first, sizeof first, "%.*s", (int)strcspn(c->words[i], " "),
				 c->words[i]);
			cand_add(first);
		}
		cand_add("quit");
		cand_add("exit");
	} else if (n == 1 || (n == 2 && strcmp(w[0], "help") == 0)) {
		const char *cmd = w[n - 1];
		size_t len = strlen(cmd);
		for (int i = 0; i < c->n_words; i++)
			if (strncmp(c->words[i], cmd, len) == 0 && c->words[i][len] == ' ')
				cand_add(c->words[i] + len + 1);
	} else if (n >= 2) {
		static char *datasets[] = {"catalog", "list", "datasets"};
		static char *devices[] = {"devices", "list"};
		static char *plugins[] = {"plugins", "list"};
		static char *rules[] = {"rules", "list"};
		if (strcmp(w[0], "data") == 0 || strcmp(w[0], "retention") == 0 ||
		    (strcmp(w[0], "catalog") == 0 && strcmp(w[1], "show") == 0))
			cand_live(c, 3, datasets, "name");
		else if (strcmp(w[0], "devices") == 0 || strcmp(w[0], "hal") == 0)
			cand_live(c, 2, devices, "id");
		else if (strcmp(w[0], "plugins") == 0)
			cand_live(c, 2, plugins, "name");
		else if (strcmp(w[0], "rules") == 0)
			cand_live(c, 2, rules, "name");
	}
	free(copy);
}

static char *complete_word(const char *text, int state)
{
	static int i;
	static size_t len;
	if (!state) {
		i = 0;
		len = strlen(text);
	}
	while (i < cands.n) {
		const char *w = cands.v[i++];
		if (strncmp(w, text, len) == 0)
			return strdup(w);
	}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;
	cand_build(shell_console, rl_line_buffer, start);
	return rl_completion_matches(text, complete_word);
}

/* The commands linlid serves ("data get", "status", …), from its `help`. */
static void load_words(struct console *c)
{
	char *argv[] = {"help"};
	json_t *j = NULL;
	if (run(c, 1, argv, &j, NULL, 0) != 0 || !json_is_array(j)) {
		json_decref(j);
		return;
	}
	c->words = calloc(json_array_size(j) + 1, sizeof(char *));
	size_t i;
	json_t *v;
	json_array_foreach(j, i, v)
	{
		const char *cmd = json_string_value(json_object_get(v, "command"));
		if (cmd && c->words)
			c->words[c->n_words++] = strdup(cmd);
	}
	json_decref(j);
}

/* Split a line into words; quotes '…' and "…" group, backslash escapes. */
static int split(char *line, char **argv, int max)
{
	int argc = 0;
	char *r = line, *w = line;
	while (*r) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			break;
		if (argc == max)
			return -1;
		argv[argc++] = w;
		char q = 0;
		while (*r && (q || (*r != ' ' && *r != '\t'))) {
			if (!q && (*r == '\'' || *r == '"'))
				q = *r++;
			else if (q && *r == q) {
				q = 0;
				r++;
			} else if (*r == '\\' && r[1] && q != '\'') {
				*w++ = r[1];
				r += 2;
			} else
				*w++ = *r++;
		}
		if (*r)
			r++;
		*w++ = '\0';
	}
	return argc;
}

static int shell(struct console *c)
{
	char hist[4096] = "";
	const char *home = getenv("HOME");
	if (home)
		snprintf(hist, sizeof hist, "%s/.linli_history", home);
	shell_console = c;
	load_words(c);
	rl_readline_name = "linli";
	rl_attempted_completion_function = complete;
	using_history();
	if (*hist)
		read_history(hist);
	printf("linli shell on %s — 'help' lists commands, 'quit' leaves\n", c->addr);
	char *line;
	while ((line = readline("linli> ")) != NULL) {
		char *argv[PROTO_MAX_ARGS];
		char *copy = strdup(line);
		int argc = split(copy, argv, PROTO_MAX_ARGS);
		if (argc > 0) {
			add_history(line);
			if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0) {
				free(copy);
				free(line);
				break;
			}
			dispatch(c, argc, argv, true);
		} else if (argc < 0)
			fprintf(stderr, "linli: more than %d words\n", PROTO_MAX_ARGS);
		free(copy);
		free(line);
	}
	if (*hist)
		write_history(hist);
	for (int i = 0; i < c->n_words; i++)
		free(c->words[i]);
	free(c->words);
	cand_clear();
	free(cands.v);
	return 0;
}

int main(int argc, char **argv)
{
	struct console c = {.addr = getenv("LINLI_SOCKET"),
			    .tls_ca = getenv("LINLI_TLS_CA"),
			    .tls_server_name = getenv("LINLI_TLS_SERVER_NAME")};
	if (!c.addr || !*c.addr)
		c.addr = access("var/linlid.sock", F_OK) == 0 ? DEMO_SOCKET : LINLI_SYSTEM_SOCKET;
	if (c.tls_ca && !*c.tls_ca)
		c.tls_ca = NULL;
	if (c.tls_server_name && !*c.tls_server_name)
		c.tls_server_name = NULL;
	/* Display widths need a UTF-8 locale: the user's, else C.UTF-8 (Debian has it always). */
	const char *loc = setlocale(LC_CTYPE, "");
	if (!loc || (!strstr(loc, "UTF-8") && !strstr(loc, "utf8")))
		setlocale(LC_CTYPE, "C.UTF-8");
	/* Options stop at the first command word: the rest belongs to the command. */
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(argv[i], "--utc") == 0)
			show_utc = true;
		else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			c.addr = argv[++i];
		else if (strncmp(argv[i], "--socket=", 9) == 0)
			c.addr = argv[i] + 9;
		else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc)
			c.tls_ca = argv[++i];
		else if (strncmp(argv[i], "--tls-ca=", 9) == 0)
			c.tls_ca = argv[i] + 9;
		else if (strcmp(argv[i], "--tls-server-name") == 0 && i + 1 < argc)
			c.tls_server_name = argv[++i];
		else if (strncmp(argv[i], "--tls-server-name=", 18) == 0)
			c.tls_server_name = argv[i] + 18;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("linli %s\n", LINLI_VERSION);
			return 0;
		} else {
			fprintf(stderr, "linli: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	int code;
	if (i == argc)
		code = isatty(STDIN_FILENO) || !c.json ? shell(&c) : (usage(stderr), 2);
	else
		code = dispatch(&c, argc - i, argv + i, false);
	if (c.open)
		nng_close(c.sock);
	/*
	 * No nng_fini here (linlid has one): after a refused TLS handshake the
	 * dialer's tasks may still be running, and nng 1.5's nng_fini then
	 * panics on a destroyed mutex ("pthread_mutex_lock: Invalid argument").
	 */
	return code;
}
