/* share_page: see share_page.h. */
#include "hub.h"
#include "auth.h"
#include "share_page.h"
#include "web.h"
#include "../core/content.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The dashboard's look (web/src/style.css): its colours, font and cards. */
static const char css[] =
    ":root{--bg:#f6f7f9;--panel:#fff;--text:#111827;--muted:#6b7280;--line:#e5e7eb;"
    "--accent:#2563eb;--danger:#b91c1c;--ok:#15803d;font:15px/1.45 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif;color-scheme:light dark}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--panel:#181b21;--text:#e5e7eb;"
    "--muted:#9ca3af;--line:#2a2f38;--accent:#3b82f6;--danger:#f87171;--ok:#4ade80}}"
    "*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--text)}"
    "a{color:var(--accent)}header{display:flex;gap:.75rem;align-items:center;padding:.6rem "
    "1.25rem;background:var(--panel);border-bottom:1px solid var(--line)}"
    ".brand{font-weight:600}.muted{color:var(--muted)}.error{color:var(--danger)}"
    ".ok{color:var(--ok)}main{max-width:60rem;margin:1.25rem auto;padding:0 1rem}"
    ".card{background:var(--panel);border:1px solid var(--line);border-radius:10px;"
    "padding:1rem 1.25rem;margin-bottom:1rem}h1{font-size:1.4rem;margin:0 0 .75rem;"
    "overflow-wrap:anywhere}nav.crumbs{margin-bottom:.5rem;overflow-wrap:anywhere}"
    "table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.45rem .5rem;"
    "border-bottom:1px solid var(--line);overflow-wrap:anywhere}th{font-size:.85rem;"
    "color:var(--muted);font-weight:500}td.num,th.num{text-align:right;white-space:nowrap}"
    "td.date{white-space:nowrap}.button,button,input{font:inherit;color:inherit;border:1px "
    "solid var(--line);background:var(--panel);border-radius:6px;padding:.4rem .7rem;"
    "min-height:2.25rem}.button,button{cursor:pointer;text-decoration:none;display:inline-flex;"
    "align-items:center}.button:hover,button:hover{border-color:var(--accent)}"
    ".primary{background:var(--accent);color:#fff;border-color:var(--accent)}"
    ".actions{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0 1rem}"
    "label{display:flex;flex-direction:column;gap:.25rem;font-size:.9rem}"
    "form.lock{display:flex;flex-direction:column;gap:.9rem;max-width:24rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0 0 1rem}"
    "dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}"
    ".preview{border:1px solid var(--line);border-radius:6px;background:var(--bg);"
    "max-width:100%}img.preview{display:block;max-height:70vh}"
    "canvas.preview{display:block;height:auto;background:#fff}"
    "iframe.preview{width:100%;height:60vh}progress{width:100%}"
    "h2{font-size:1.1rem;margin:0 0 .75rem}form.lock h1,form.lock p{margin:0}"
    ".folder{display:inline-block;width:1.1em;height:.8em;margin-right:.4em;"
    "border-radius:2px 3px 3px 3px;background:var(--accent);opacity:.75;vertical-align:-1px}"
    "a.dl{margin-left:.4rem;text-decoration:none;color:var(--muted)}a.dl:hover{color:var(--accent)}"
    "@media (max-width:40rem){td.date,th.date{display:none}}";

/* Uploads one file at a time with XHR (upload progress), into the folder in
 * the form's data-dir (HTML-escaped there, never pasted into the script). */
static const char upload_js[] =
    "const f=document.getElementById('up'),bar=document.getElementById('bar'),"
    "st=document.getElementById('st');f.onsubmit=async(e)=>{e.preventDefault();"
    "const files=[...f.files.files];if(!files.length){st.textContent='Choose files first.';"
    "return}bar.hidden=false;let ok=0;for(const x of files){st.textContent='Uploading '+"
    "x.name+'…';const s=await new Promise((done)=>{const q=new XMLHttpRequest();"
    "q.open('PUT',f.dataset.action+encodeURIComponent(f.dataset.dir+'/'+x.name));"
    "q.upload.onprogress=(p)=>{if(p.lengthComputable)bar.value=p.loaded/p.total};"
    "q.onload=()=>done(q.status);q.onerror=()=>done(0);q.send(x)});"
    "if(s>=200&&s<300)ok++;else{st.textContent='Failed: '+x.name+(s?' ('+s+')':'');"
    "st.className='error';return}}st.textContent='Uploaded '+ok+(ok===1?' file':' files')+"
    "'.';st.className='ok';setTimeout(()=>location.reload(),600)}";

static void head(FILE *f, const char *title, const char *nonce)
{
	fputs("<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
	      "content='width=device-width,initial-scale=1'><meta name=referrer "
	      "content=no-referrer><title>",
	      f);
	markup_escape(f, title);
	fprintf(f,
	        " — roost</title><style nonce=%s>%s</style></head><body><header><span "
	        "class=brand>roost</span><span class=muted>shared with you</span></header><main>",
	        nonce, css);
}

/* worker: the page draws a PDF with pdf.js, whose worker comes from this
 * origin (/s/_assets/); other pages start no worker. */
static enum MHD_Result send_page_csp(struct req *r, unsigned status, char *html, size_t len,
                                     const char *nonce, int64_t retry_s, bool worker)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, html, MHD_RESPMEM_MUST_FREE);
	char *csp =
	    xasprintf("default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; "
	              "img-src 'self'; media-src 'self'; frame-src 'self'; connect-src "
	              "'self'; %sform-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	              nonce, nonce, worker ? "worker-src 'self'; " : "");
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (retry_s > 0) {
		char v[24];
		snprintf(v, sizeof v, "%lld", (long long)retry_s);
		MHD_add_response_header(resp, "Retry-After", v);
	}
	free(csp);
	return req_queue(r, status, resp);
}

static enum MHD_Result send_page(struct req *r, unsigned status, char *html, size_t len,
                                 const char *nonce, int64_t retry_s)
{
	return send_page_csp(r, status, html, len, nonce, retry_s, false);
}

/* A fresh nonce for one answer's script and style. */
static void new_nonce(char out[33])
{
	char tok[64], hash[65];
	auth_new_token(tok, hash);
	snprintf(out, 33, "%.32s", hash);
}

void share_url_escape(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~/", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

static void human_size(FILE *f, int64_t n)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		fprintf(f, "%lld B", (long long)n);
	else
		fprintf(f, "%.1f %s", v, unit[u]);
}

static void date(FILE *f, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char iso[32], shown[32];
	if (ms <= 0 || !gmtime_r(&t, &tm)) {
		fputs("—", f);
		return;
	}
	strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(shown, sizeof shown, "%Y-%m-%d %H:%M UTC", &tm);
	fprintf(f, "<time datetime=%s>%s</time>", iso, shown);
}

/* A link to the link's page for rel (a folder below the root). */
static void page_href(FILE *f, const char *tok, const char *rel)
{
	fprintf(f, "/s/%s", tok);
	if (strcmp(rel, "/") != 0) {
		fputs("?path=", f);
		share_url_escape(f, rel);
	}
}

/* Top / a / b: every ancestor of rel a link, the last one plain. */
static void crumbs(FILE *f, const struct share_view *v)
{
	const char *top = strcmp(v->name, "/") == 0 ? "Shared folder" : v->name;
	if (strcmp(v->rel, "/") == 0)
		return; /* the heading says it */
	fputs("<nav class=crumbs aria-label='Folder path'>", f);
	fprintf(f, "<a href='/s/%s'>", v->tok);
	markup_escape(f, top);
	fputs("</a>", f);
	const char *p = v->rel;
	while (*p == '/') {
		const char *seg = p + 1, *end = strchr(seg, '/');
		char *prefix = xstrndup(v->rel, (size_t)((end ? end : seg + strlen(seg)) - v->rel));
		char *name = xstrndup(seg, end ? (size_t)(end - seg) : strlen(seg));
		fputs(" / ", f);
		if (end) {
			fputs("<a href='", f);
			page_href(f, v->tok, prefix);
			fputs("'>", f);
			markup_escape(f, name);
			fputs("</a>", f);
		} else {
			fputs("<span aria-current=page>", f);
			markup_escape(f, name);
			fputs("</span>", f);
		}
		free(prefix);
		free(name);
		if (!end)
			break;
		p = end;
	}
	fputs("</nav>", f);
}

static const char *title_of(const struct share_view *v)
{
	if (strcmp(v->rel, "/") == 0)
		return strcmp(v->name, "/") == 0 ? "Shared folder" : v->name;
	return strrchr(v->rel, '/') + 1;
}

enum MHD_Result share_page_folder(struct req *r, const struct share_view *v, json_t *entries,
                                  bool zip)
{
	char nonce[33];
	new_nonce(nonce);
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	head(f, title_of(v), nonce);
	fputs("<section class=card>", f);
	crumbs(f, v);
	fputs("<h1>", f);
	markup_escape(f, title_of(v));
	fputs("</h1><p class=actions>", f);
	size_t n = json_array_size(entries);
	if (zip && n) {
		fprintf(f, "<a class='button primary' href='/s/%s/zip?path=", v->tok);
		share_url_escape(f, v->rel);
		fputs("' download>Download all as ZIP</a>", f);
	}
	fputs("</p>", f);
	if (!n) {
		fputs("<p class=muted>This folder is empty.</p>", f);
	} else {
		fputs("<table><thead><tr><th>Name</th><th class=num>Size</th><th "
		      "class=date>Modified</th></tr></thead><tbody>",
		      f);
		size_t i;
		json_t *e;
		json_array_foreach(entries, i, e)
		{
			const char *name = json_get_str(e, "name");
			if (!name)
				continue;
			bool folder = strcmp(json_get_str(e, "type"), "folder") == 0;
			char *p = path_join(v->rel, name);
			fputs("<tr><td>", f);
			if (folder) {
				fputs("<a href='", f);
				page_href(f, v->tok, p);
				fputs("'><span class=folder aria-hidden=true></span>", f);
				markup_escape(f, name);
				fputs("/</a>", f);
			} else { /* its page (a preview), and a download at once */
				fputs("<a href='", f);
				page_href(f, v->tok, p);
				fputs("'>", f);
				markup_escape(f, name);
				fprintf(f, "</a> <a class=dl href='/s/%s/file?path=", v->tok);
				share_url_escape(f, p);
				fputs("' download aria-label='Download ", f);
				markup_escape(f, name);
				fputs("' title=Download>&#8595;</a>", f);
			}
			fputs("</td><td class=num>", f);
			json_int_t size = 0;
			if (!folder && (size = json_integer_value(json_object_get(e, "size"))) >= 0)
				human_size(f, size);
			else
				fputs("—", f);
			fputs("</td><td class=date>", f);
			date(f, json_integer_value(json_object_get(e, "modified_at")));
			fputs("</td></tr>", f);
			free(p);
		}
		fputs("</tbody></table>", f);
	}
	fputs("</section>", f);
	if (v->write) {
		fprintf(f,
		        "<section class=card><h2>Upload</h2><form id=up "
		        "data-action='/s/%s/upload?path=' "
		        "data-dir='",
		        v->tok);
		markup_escape(f, strcmp(v->rel, "/") == 0 ? "" : v->rel);
		fprintf(f,
		        "'><p class=actions><label>Files to add here<input type=file name=files "
		        "multiple required></label></p><p class=actions><button "
		        "class=primary>Upload</button></p><progress id=bar max=1 value=0 "
		        "hidden></progress><p id=st role=status></p></form></section>"
		        "<script nonce=%s>%s</script>",
		        nonce, upload_js);
	}
	fputs("</main></body></html>", f);
	fclose(f);
	return send_page(r, MHD_HTTP_OK, html, len, nonce, 0);
}

enum MHD_Result share_page_file(struct req *r, const struct share_view *v, json_t *file)
{
	char nonce[33];
	new_nonce(nonce);
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	const char *name = json_get_str(file, "name"), *ct = json_get_str(file, "content_type");
	const char *dot = strrchr(name, '.');
	bool pdf = (ct && strncasecmp(ct, "application/pdf", 15) == 0) ||
	           (dot && strcasecmp(dot, ".pdf") == 0 &&
	            (!ct || !*ct || strcmp(ct, "application/octet-stream") == 0));
	bool pdfjs = pdf && web_share_assets(r->hub);
	/* The file's URLs: a file inside a shared folder is named by its path. */
	char *dl = NULL, *src = NULL;
	size_t n = 0;
	FILE *u = open_memstream(&dl, &n);
	fprintf(u, "/s/%s/file", v->tok);
	if (strcmp(v->rel, "/") != 0) {
		fputs("?path=", u);
		share_url_escape(u, v->rel);
	}
	fclose(u);
	src = xasprintf("%s%sinline=1", dl, strchr(dl, '?') ? "&amp;" : "?");
	head(f, name, nonce);
	crumbs(f, v);
	fputs("<section class=card><h1>", f);
	markup_escape(f, name);
	fputs("</h1><dl><dt>Size</dt><dd>", f);
	human_size(f, json_integer_value(json_object_get(file, "size")));
	fputs("</dd><dt>Modified</dt><dd>", f);
	date(f, json_integer_value(json_object_get(file, "modified_at")));
	fputs("</dd><dt>Type</dt><dd>", f);
	markup_escape(f, ct && *ct ? ct : "unknown");
	fprintf(f,
	        "</dd></dl><p class=actions><a class='button primary' href='%s' "
	        "download>Download</a></p>",
	        dl);
	/* Previews only of what the content port shows inline (never HTML or SVG:
	 * those are attachments under a CSP sandbox). */
	if (ct && content_inline_ok(ct)) {
		if (strncmp(ct, "image/", 6) == 0)
			fprintf(f, "<img class=preview src='%s' alt='Preview of ", src);
		else if (strncmp(ct, "video/", 6) == 0)
			fprintf(f, "<video class=preview controls src='%s' title='", src);
		else if (strncmp(ct, "audio/", 6) == 0)
			fprintf(f, "<audio controls src='%s' title='", src);
		else
			fprintf(f, "<iframe class=preview sandbox src='%s' title='Preview of ",
			        src);
		markup_escape(f, name);
		fputs(strncmp(ct, "image/", 6) == 0   ? "'>"
		      : strncmp(ct, "video/", 6) == 0 ? "'></video>"
		      : strncmp(ct, "audio/", 6) == 0 ? "'></audio>"
		                                      : "'></iframe>",
		      f);
	} else if (pdf && pdfjs) {
		/* PDF viewers run scripts and forms: a PDF is never shown inline from
		 * the content port (content.c). pdf.js (the dashboard build's
		 * pdf-preview.js) reads the bytes and draws the first page instead. */
		fprintf(f,
		        "<canvas class=preview hidden data-pdf-src='%s' "
		        "data-pdf-status=pdfst aria-label='First page of ",
		        src);
		markup_escape(f, name);
		fprintf(f,
		        "'></canvas><p id=pdfst class=muted role=status>Drawing the first "
		        "page…</p><script nonce=%s src='/s/_assets/pdf-preview.js'></script>",
		        nonce);
	} else if (pdf) {
		fputs("<p class=muted>No preview of PDFs on this server: download it to read "
		      "it.</p>",
		      f);
	} else {
		fputs("<p class=muted>No preview of this kind of file: download it.</p>", f);
	}
	fputs("</section></main></body></html>", f);
	fclose(f);
	free(dl);
	free(src);
	return send_page_csp(r, MHD_HTTP_OK, html, len, nonce, 0, pdf && pdfjs);
}

/* GET /s/_assets/NAME: pdf.js for a share page's PDF preview (web.c keeps the
 * list of names). The worker's own CSP is this answer's: it may fetch nothing. */
enum MHD_Result api_share_asset(struct req *r)
{
	int64_t size = 0;
	int fd = web_share_asset_open(r->hub, r->params[0], &size);
	if (fd < 0)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such file");
	struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)size, fd);
	MHD_add_response_header(resp, "Content-Type", "text/javascript; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy",
	                        "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	return req_queue(r, MHD_HTTP_OK, resp);
}

enum MHD_Result share_page_locked(struct req *r, const struct share_view *v, unsigned status,
                                  const char *message, int64_t retry_s)
{
	char nonce[33];
	new_nonce(nonce);
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	head(f, "Password needed", nonce);
	fprintf(f, "<section class=card><form class=lock method=post action='/s/%s'>", v->tok);
	fputs("<h1>This link needs a password</h1><p class=muted>Whoever shared it can tell you "
	      "the password.</p><input type=hidden name=path value='",
	      f);
	markup_escape(f, v->rel);
	fputs("'><label>Password<input name=password type=password autocomplete=off required "
	      "autofocus></label>",
	      f);
	if (message) {
		fputs("<p class=error role=alert>", f);
		markup_escape(f, message);
		fputs("</p>", f);
	}
	fputs("<p><button class=primary>Open</button></p></form></section></main></body></html>",
	      f);
	fclose(f);
	return send_page(r, status, html, len, nonce, retry_s);
}

enum MHD_Result share_page_message(struct req *r, unsigned status, const char *title,
                                   const char *message)
{
	char nonce[33];
	new_nonce(nonce);
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	head(f, title, nonce);
	fputs("<section class=card><h1>", f);
	markup_escape(f, title);
	fputs("</h1><p>", f);
	markup_escape(f, message);
	fputs("</p></section></main></body></html>", f);
	fclose(f);
	return send_page(r, status, html, len, nonce, 0);
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

char *share_form_field(struct req *r, const char *key)
{
	size_t klen = strlen(key);
	const char *p = r->body, *end = r->body ? r->body + r->body_len : NULL;
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			char *out = xmalloc((size_t)(stop - p)), *o = out;
			for (const char *q = p + klen + 1; q < stop; q++) {
				if (*q == '+')
					*o++ = ' ';
				else if (*q == '%' && stop - q > 2 && hexval(q[1]) >= 0 &&
				         hexval(q[2]) >= 0) {
					*o++ = (char)(hexval(q[1]) * 16 + hexval(q[2]));
					q += 2;
				} else
					*o++ = *q;
			}
			*o = 0;
			if (memchr(out, 0, (size_t)(o - out)) || strlen(out) != (size_t)(o - out)) {
				free(out); /* a NUL inside */
				return NULL;
			}
			return out;
		}
		p = amp ? amp + 1 : end;
	}
	return NULL;
}
