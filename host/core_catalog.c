/*
 * core_catalog — the kernel's own datasets, built into linlid.
 *
 * accounts, sessions, audit, apikeys, grants and journal_holders exist on every node whatever its
 * catalog_dir holds (or whether it has one): the permission model cannot
 * depend on a file an operator may forget. They are `system` datasets: no
 * data command, plugin or HTTP request reaches them. catalog.c loads these
 * first and refuses a catalog file that defines one of their names.
 */
#include "catalog.h"

static const char core_accounts[] =
	"# 账号 — people and machines. One person one password, one machine one account.\n"
	"# Kept by the kernel (host/tier_store.c); no data command, plugin or HTTP call reaches it.\n"
	"dataset = {\n"
	"  name = \"accounts\";\n"
	"  title_zh = \"账号\";\n"
	"  title_en = \"Accounts\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"kind\";         type = \"enum\";    required = true; values = [ \"person\", \"machine\" ]; indexed = true; },\n"
	"    { name = \"display_name\"; type = \"string\";  max_len = 64; },\n"
	"    { name = \"role\";         type = \"enum\";    required = true; indexed = true;\n"
	"      values = [ \"admin\", \"operator\", \"grid_worker\", \"auditor\", \"viewer\" ]; },\n"
	"    { name = \"hash\";         type = \"string\";  required = true; max_len = 256; },   # Argon2id (crypto_pwhash_str)\n"
	"    { name = \"disabled\";     type = \"boolean\"; },\n"
	"    { name = \"grants\";       type = \"string\";  max_len = 4096; },                    # space-separated\n"
	"    { name = \"duties\";       type = \"string\";  max_len = 1024; },                    # workflow duties, space-separated\n"
	"    { name = \"failed\";       type = \"integer\"; min = 0; },\n"
	"    { name = \"locked_until\"; type = \"time\"; },\n"
	"    { name = \"created\";      type = \"time\"; },\n"
	"    { name = \"created_by\";   type = \"string\";  max_len = 64; },\n"
	"    { name = \"epoch\";        type = \"integer\"; min = 0; }                          # bumped when sessions must end\n"
	"  );\n"
	"};\n";

static const char core_sessions[] =
	"# 会话 — console sessions. The id is a hash of the token; the token itself is never stored.\n"
	"dataset = {\n"
	"  name = \"sessions\";\n"
	"  title_zh = \"会话\";\n"
	"  title_en = \"Sessions\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"user\";    type = \"string\"; required = true; indexed = true; max_len = 64; },\n"
	"    { name = \"expires\"; type = \"time\";   required = true; },\n"
	"    { name = \"created\"; type = \"time\";   required = true; indexed = true; },\n"
	"    { name = \"epoch\";   type = \"integer\"; min = 0; },               # the account's at login\n"
	"    { name = \"ended\";   type = \"string\"; max_len = 160; }           # why it ended, if it did\n"
	"  );\n"
	"};\n";

static const char core_audit[] =
	"# 审计日志 — append-only: who did what, where, and whether it was allowed, denied, masked\n"
	"# (a plain read of sensitive fields) or failed (a plugin's act that did not happen).\n"
	"# A record's scope is the jurisdiction acted on, so an auditor sees the entries of its subtree.\n"
	"dataset = {\n"
	"  name = \"audit\";\n"
	"  title_zh = \"审计日志\";\n"
	"  title_en = \"Audit log\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"time\";   type = \"time\";   required = true; indexed = true; },   # retention trims by it\n"
	"    { name = \"who\";    type = \"string\"; required = true; indexed = true; max_len = 80; },\n"
	"    { name = \"via\";    type = \"string\"; indexed = true; max_len = 80; },  # the plugin or rule that acted for who\n"
	"    { name = \"action\"; type = \"string\"; required = true; indexed = true; max_len = 48; },\n"
	"    { name = \"object\"; type = \"string\"; max_len = 160; },\n"
	"    { name = \"result\"; type = \"enum\";   required = true; indexed = true; values = [ \"allowed\", \"denied\", \"masked\", \"failed\" ]; },\n"
	"    { name = \"detail\"; type = \"string\"; max_len = 512; },\n"
	"    { name = \"count\";  type = \"integer\"; min = 1; },  # plain reads folded into one entry (retention)\n"
	"    { name = \"first\";  type = \"time\"; }              # ... the first of them (time: the last window's end)\n"
	"  );\n"
	"};\n";

static const char core_apikeys[] =
	"# 开放接口密钥 — keys of third-party apps for the open-data API, each bound to a scope and datasets.\n"
	"dataset = {\n"
	"  name = \"apikeys\";\n"
	"  title_zh = \"开放接口密钥\";\n"
	"  title_en = \"API keys\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"hash\";     type = \"string\";  required = true; indexed = true; max_len = 128; },\n"
	"    { name = \"datasets\"; type = \"string\";  required = true; max_len = 2048; },   # space-separated\n"
	"    { name = \"resources\"; type = \"string\"; max_len = 2048; },   # apires list; absent: datasets alone\n"
	"    { name = \"role\";     type = \"enum\";    values = [ \"viewer\", \"operator\" ]; },   # what plugin routes do as the key; absent: viewer\n"
	"    { name = \"disabled\"; type = \"boolean\"; },\n"
	"    { name = \"created\";  type = \"time\"; },\n"
	"    { name = \"created_by\"; type = \"string\"; max_len = 64; }\n"
	"  );\n"
	"};\n";

static const char core_grants[] =
	"# 能力授权 — the capabilities an admin granted to a plugin or a rule of this node.\n"
	"# A plugin or rule declaring a capability not granted here is refused at load (host/grants.c).\n"
	"dataset = {\n"
	"  name = \"grants\";\n"
	"  title_zh = \"能力授权\";\n"
	"  title_en = \"Capability grants\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  down = true;\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"kind\";       type = \"enum\";   required = true; values = [ \"plugin\", \"rule\" ]; indexed = true; },\n"
	"    { name = \"name\";       type = \"string\"; required = true; max_len = 64; indexed = true; },\n"
	"    { name = \"caps\";       type = \"string\"; max_len = 8192; },                    # space-separated\n"
	"    { name = \"updated\";    type = \"time\"; },\n"
	"    { name = \"updated_by\"; type = \"string\"; max_len = 80; }\n"
	"  );\n"
	"};\n";

static const char core_journal_holders[] =
	"# 日志读取位置 — readers of the event journal (and later federation links) that hold its\n"
	"# entries after their position from being trimmed (host/retention.c). The id is the name.\n"
	"dataset = {\n"
	"  name = \"journal_holders\";\n"
	"  title_zh = \"日志读取位置\";\n"
	"  title_en = \"Journal holders\";\n"
	"  owner = \"platform\";\n"
	"  family = \"core\";\n"
	"  level = \"city\";\n"
	"  sharing = \"not_shared\";\n"
	"  source = \"community\";\n"
	"  system = true;\n"
	"  fields = (\n"
	"    { name = \"seq\";     type = \"integer\"; required = true; min = 0; },   # read up to here\n"
	"    { name = \"updated\"; type = \"time\";    required = true; },\n"
	"    { name = \"by\";      type = \"string\";  max_len = 80; }\n"
	"  );\n"
	"};\n";

const struct cat_core_file cat_core_files[] = {
	{"<built-in>/accounts.cfg", core_accounts},
	{"<built-in>/sessions.cfg", core_sessions},
	{"<built-in>/audit.cfg", core_audit},
	{"<built-in>/apikeys.cfg", core_apikeys},
	{"<built-in>/grants.cfg", core_grants},
	{"<built-in>/journal_holders.cfg", core_journal_holders},
	{NULL, NULL},
};
