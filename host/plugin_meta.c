/*
 * plugin_meta — plug_read_meta (plugin.h): the metadata block of a `.so`
 * read straight from its ELF section. Apart from plugin_so.c because it
 * needs nothing of the kernel: the vendor's tool (linli-bundle) reads the
 * same block to write a bundle's manifest.
 */
#include <elf.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "linli/error.h"
#include "linli/plugin.h"
#include "linli/version.h"

int plug_read_meta(const void *buf, size_t len, struct linli_plugin_meta *out, char *err,
		   size_t errlen);

/* errf without util.c (the tool links this file alone). */
__attribute__((format(printf, 4, 5))) static int meta_err(char *err, size_t errlen, int rc,
							  const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}
#define errf meta_err

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

#if __SIZEOF_POINTER__ == 8
#define HOST_CLASS ELFCLASS64
#else
#define HOST_CLASS ELFCLASS32
#endif

/* Size of the metadata block of SDK 1.<minor>; index = minor. */
static const uint32_t meta_sizes[] = {LINLI_META_SIZE_1_0, LINLI_META_SIZE_1_0};
_Static_assert(sizeof meta_sizes / sizeof meta_sizes[0] == LINLI_SDK_MINOR + 1,
	       "add the metadata block size of the new SDK minor to meta_sizes");

/* Is [off, off+size) inside a buffer of len bytes? */
static bool in_bounds(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

int plug_read_meta(const void *buf, size_t len, struct linli_plugin_meta *out, char *err,
		   size_t errlen)
{
	const unsigned char *b = buf;
	memset(out, 0, sizeof *out);
	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) != 0)
		return errf(err, errlen, LINLI_EINVAL, "not an ELF file");
	if (b[EI_CLASS] != HOST_CLASS || b[EI_DATA] != HOST_DATA)
		return errf(err, errlen, LINLI_EINVAL,
			    "ELF file of another word size or byte order (class %u, data %u)",
			    b[EI_CLASS], b[EI_DATA]);
	ElfW(Ehdr) eh;
	if (len < sizeof eh)
		return errf(err, errlen, LINLI_ECORRUPT, "malformed ELF: truncated header");
	memcpy(&eh, b, sizeof eh);
	if (eh.e_type != ET_DYN)
		return errf(err, errlen, LINLI_EINVAL, "not a shared object (ELF type %u)",
			    (unsigned)eh.e_type);
#ifdef HOST_MACHINE
	if (eh.e_machine != HOST_MACHINE)
		return errf(err, errlen, LINLI_EINVAL,
			    "built for another machine (ELF machine %u, this one is %u)",
			    (unsigned)eh.e_machine, (unsigned)HOST_MACHINE);
#endif
	if (eh.e_shoff == 0)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: no section headers (over-stripped?)");
	if (eh.e_shentsize != sizeof(ElfW(Shdr)))
		return errf(err, errlen, LINLI_ECORRUPT, "malformed ELF: section header size %u",
			    (unsigned)eh.e_shentsize);
	if (!in_bounds(eh.e_shoff, sizeof(ElfW(Shdr)), len))
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: section headers outside the file");
	ElfW(Shdr) sh0;
	memcpy(&sh0, b + eh.e_shoff, sizeof sh0);
	uint64_t shnum = eh.e_shnum ? eh.e_shnum : sh0.sh_size;
	uint64_t shstrndx = eh.e_shstrndx == SHN_XINDEX ? sh0.sh_link : eh.e_shstrndx;
	if (shnum == 0 || shnum > (len - eh.e_shoff) / sizeof(ElfW(Shdr)))
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: section headers outside the file");
	if (shstrndx >= shnum)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: section name table index %llu out of range",
			    (unsigned long long)shstrndx);
	ElfW(Shdr) strsh;
	memcpy(&strsh, b + eh.e_shoff + shstrndx * sizeof(ElfW(Shdr)), sizeof strsh);
	if (strsh.sh_type == SHT_NOBITS || !in_bounds(strsh.sh_offset, strsh.sh_size, len))
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: section name table outside the file");
	const char *names = (const char *)b + strsh.sh_offset;
	const size_t want_len = sizeof LINLI_PLUGIN_SECTION; /* with the NUL */
	int found = 0;
	ElfW(Shdr) sec = {0};
	for (uint64_t i = 0; i < shnum; i++) {
		ElfW(Shdr) sh;
		memcpy(&sh, b + eh.e_shoff + i * sizeof(ElfW(Shdr)), sizeof sh);
		if (sh.sh_name >= strsh.sh_size || strsh.sh_size - sh.sh_name < want_len)
			continue;
		if (memcmp(names + sh.sh_name, LINLI_PLUGIN_SECTION, want_len) == 0) {
			found++;
			sec = sh;
		}
	}
	if (!found)
		return errf(err, errlen, LINLI_EINVAL,
			    "no plugin descriptor (no %s section: not built with LINLI_PLUGIN())",
			    LINLI_PLUGIN_SECTION);
	if (found > 1)
		return errf(err, errlen, LINLI_ECORRUPT, "%d %s sections: LINLI_PLUGIN used twice?",
			    found, LINLI_PLUGIN_SECTION);
	if (sec.sh_type == SHT_NOBITS || !in_bounds(sec.sh_offset, sec.sh_size, len))
		return errf(err, errlen, LINLI_ECORRUPT,
			    "malformed ELF: %s section outside the file", LINLI_PLUGIN_SECTION);
	const size_t head = offsetof(struct linli_plugin_meta, name);
	if (sec.sh_size < head)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "descriptor section too small (%llu bytes)",
			    (unsigned long long)sec.sh_size);
	const unsigned char *m = b + sec.sh_offset;
	/* Whatever fits is copied, so that a refused plugin can still be named. */
	memcpy(out, m, sec.sh_size < sizeof *out ? sec.sh_size : sizeof *out);
	if (memcmp(out->magic, LINLI_META_MAGIC, sizeof out->magic) != 0)
		return errf(err, errlen, LINLI_ECORRUPT, "bad descriptor magic");
	if (out->sdk_major != LINLI_SDK_MAJOR)
		return errf(err, errlen, LINLI_EVERSION,
			    "built for SDK %u.%u; this linlid takes SDK %d.x plugins (it is %s)",
			    out->sdk_major, out->sdk_minor, LINLI_SDK_MAJOR, LINLI_SDK_VERSION);
	if (out->sdk_minor > LINLI_SDK_MINOR)
		return errf(err, errlen, LINLI_EVERSION,
			    "built for SDK %u.%u, newer than this linlid's SDK %s: upgrade linlid "
			    "or rebuild the plugin against SDK %s",
			    out->sdk_major, out->sdk_minor, LINLI_SDK_VERSION, LINLI_SDK_VERSION);
	uint32_t want = meta_sizes[out->sdk_minor];
	if (out->size != want)
		return errf(err, errlen, LINLI_EVERSION,
			    "descriptor size %u is not the size of an SDK %u.%u descriptor (%u)",
			    out->size, out->sdk_major, out->sdk_minor, want);
	if (sec.sh_size < out->size)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "descriptor says %u bytes but its section holds %llu", out->size,
			    (unsigned long long)sec.sh_size);
	if (out->size < sizeof *out) /* an older minor: later fields stay zero */
		memset((char *)out + out->size, 0, sizeof *out - out->size);
	return 0;
}
