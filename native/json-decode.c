/* json_decode and mix.null: part of json.c (which includes it after the declarations). */

/* ---- json_decode: a strict RFC 8259 parser that pushes Lua values as it goes ---- */

typedef struct {
  lua_State *L;
  const unsigned char *s; /* the document; Lua strings end with a NUL, so a read at `end` sees 0 */
  unsigned long at, end;
  int *sizes; /* element counts of the arrays and objects in opening order, so tables get their final size */
  int opened;
  buffer str; /* a string with escapes, after unescaping */
  char err[120];
} decoder;

static int decode_error(decoder *d, const char *what) {
  unsigned char c = d->s[d->at];
  if (d->at >= d->end) snprintf(d->err, sizeof d->err, "json_decode: unexpected end of input (%s)", what);
  else if (c > 0x20 && c < 0x7f) snprintf(d->err, sizeof d->err, "json_decode: %s, found '%c' at offset %lu", what, c, d->at);
  else snprintf(d->err, sizeof d->err, "json_decode: %s, found byte 0x%02x at offset %lu", what, c, d->at);
  return 0;
}

/* What count_elements stops at: 1 a quote, 2 a comma, 3 an opening and 4 a closing bracket, 5 a NUL. */
static const unsigned char structure[256] = { [0] = 5, ['"'] = 1, [','] = 2, ['['] = 3, ['{'] = 3, [']'] = 4, ['}'] = 4 };

/* Past the string whose contents start at p, to its closing quote (or end): escaped bytes are skipped. */
static const unsigned char *skip_string(const unsigned char *p, const unsigned char *end) {
  for (;;) {
    while (!string_stop[*p]) p++;
    if (p >= end || *p == '"') return p;
    if (*p == '\\' && ++p >= end) return p;
    p++;
  }
}

/* One pass counting commas per container into sizes (as far as room goes); returns the number of
 * containers. Only a size hint: the parse validates. */
static int count_elements(decoder *d, int *sizes, int room) {
  const unsigned char *p = d->s, *end = d->s + d->end;
  int open[MAX_DEPTH], count = 0, depth = 0;
  for (;; p++) {
    while (!structure[*p]) p++;
    if (p >= end) return count;
    switch (structure[*p]) {
      case 1:
        p = skip_string(p + 1, end);
        if (p >= end) return count;
        break;
      case 2:
        if (depth > 0 && open[depth - 1] < room) sizes[open[depth - 1]]++;
        break;
      case 3:
        if (depth == MAX_DEPTH) return count; /* the parse fails before it gets here */
        if (count < room) sizes[count] = 1;
        open[depth++] = count++;
        break;
      case 4:
        if (depth > 0) depth--;
        break;
    }
  }
}

/* The byte at `at` once whitespace is passed; the call is made only when there is whitespace (compact
 * documents have none, and every call costs in TinyCC's code). */
#define NEXT_BYTE(d) ((d)->s[(d)->at] > ' ' ? (d)->s[(d)->at] : skip_space(d))

static unsigned char skip_space(decoder *d) {
  unsigned char c = d->s[d->at];
  while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = d->s[++d->at];
  return c;
}

static int literal(decoder *d, const char *word, int n) {
  int i;
  for (i = 0; i < n; i++) if (d->s[d->at + i] != (unsigned char)word[i]) return 0;
  d->at += n;
  return 1;
}

static int hex4(decoder *d, unsigned long i, int *v) {
  unsigned long j;
  *v = 0;
  for (j = i; j < i + 4; j++) {
    int c = d->s[j] | 0x20; /* lower-cases letters */
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) {
      d->at = j;
      return decode_error(d, "invalid \\u escape");
    }
    *v = *v * 16 + digit;
  }
  return 1;
}

/* The rest of a string from its first backslash; `start` is its first byte. */
static int decode_escaped(decoder *d, unsigned long start) {
  const unsigned char *s = d->s;
  unsigned long n = d->at - start;
  unsigned char c;
  char *o;
  d->str.n = 0;
  put(&d->str, (const char *)s + start, n);
  for (c = s[d->at]; c != '"'; c = s[++d->at]) {
    int cp, low;
    if (c < 0x20) return decode_error(d, "unescaped control character in string");
    o = reserve(&d->str, 4);
    if (c != '\\') {
      *o = c;
      d->str.n++;
      continue;
    }
    c = s[++d->at];
    if (c != 'u') {
      const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
      int k;
      for (k = 0; from[k] && from[k] != c; k++) {}
      if (!from[k] || !c) return decode_error(d, "invalid escape");
      *o = to[k];
      d->str.n++;
      continue;
    }
    if (!hex4(d, d->at + 1, &cp)) return 0;
    d->at += 4;
    /* A surrogate pair is one code point; a lone surrogate becomes U+FFFD, as in Go. */
    if (cp >= 0xd800 && cp < 0xdc00 && s[d->at + 1] == '\\' && s[d->at + 2] == 'u') {
      if (!hex4(d, d->at + 3, &low)) return 0;
      if (low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        d->at += 6;
      }
    }
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    if (cp < 0x80) {
      o[0] = cp;
      d->str.n += 1;
    } else if (cp < 0x800) {
      o[0] = 0xc0 | cp >> 6;
      o[1] = 0x80 | (cp & 0x3f);
      d->str.n += 2;
    } else if (cp < 0x10000) {
      o[0] = 0xe0 | cp >> 12;
      o[1] = 0x80 | (cp >> 6 & 0x3f);
      o[2] = 0x80 | (cp & 0x3f);
      d->str.n += 3;
    } else {
      o[0] = 0xf0 | cp >> 18;
      o[1] = 0x80 | (cp >> 12 & 0x3f);
      o[2] = 0x80 | (cp >> 6 & 0x3f);
      o[3] = 0x80 | (cp & 0x3f);
      d->str.n += 4;
    }
  }
  lua_pushlstring(d->L, d->str.p, d->str.n);
  d->at++;
  return 1;
}

static int decode_string(decoder *d) {
  const unsigned char *start = d->s + d->at + 1, *p = start;
  while (!string_stop[*p]) p++;
  d->at = p - d->s;
  if (*p == '\\') return decode_escaped(d, start - d->s);
  if (*p != '"') return decode_error(d, "unescaped control character in string");
  lua_pushlstring(d->L, (const char *)start, p - start);
  d->at++;
  return 1;
}

static int decode_number(decoder *d, double *out) {
  /* Powers of ten that are exact doubles: an integer below 2^53 divided by one is correctly rounded. */
  static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                  1e14, 1e15, 1e16 };
  const unsigned char *start = d->s + d->at, *p = start;
  unsigned long long digits = 0; /* the number without its point (exact up to 19 digits; used up to 16) */
  int scale = 0;
  if (*p == '-') p++;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    for (; *p >= '0' && *p <= '9'; p++) digits = digits * 10 + (*p - '0');
  } else {
    d->at = p - d->s;
    return decode_error(d, "invalid number");
  }
  if (*p == '.') {
    if (*++p < '0' || *p > '9') {
      d->at = p - d->s;
      return decode_error(d, "expected a digit after '.'");
    }
    for (; *p >= '0' && *p <= '9'; p++, scale++) digits = digits * 10 + (*p - '0');
  }
  d->at = p - d->s;
  if (*p != 'e' && *p != 'E' && p - start <= 16 && digits <= 9007199254740991ULL) {
    *out = (*start == '-' ? -(double)digits : (double)digits) / pow10[scale];
    return 1;
  }
  if (*p == 'e' || *p == 'E') {
    if (*++p == '+' || *p == '-') p++;
    d->at = p - d->s;
    if (*p < '0' || *p > '9') return decode_error(d, "expected a digit in the exponent");
    while (*p >= '0' && *p <= '9') p++;
    d->at = p - d->s;
  }
  /* strtod reads exactly the number just validated: JSON's number syntax is a part of its own */
  *out = strtod((const char *)start, 0);
  if (*out - *out != 0) {
    d->at = start - d->s;
    return decode_error(d, "number out of range");
  }
  return 1;
}

static int decode_object(decoder *d, int depth);
static int decode_array(decoder *d, int depth);

/* Pushes the value at `at` and returns 1; returns 2, pushing nothing, for null (the caller decides what null
 * is); 0 on an error. */
static int decode_value(decoder *d, int depth) {
  unsigned char c = NEXT_BYTE(d);
  double v;
  if (c == '"') return decode_string(d);
  if (c == '{') return decode_object(d, depth + 1);
  if (c == '[') return decode_array(d, depth + 1);
  if (c == '-' || (c >= '0' && c <= '9')) {
    if (!decode_number(d, &v)) return 0;
    lua_pushnumber(d->L, v);
    return 1;
  }
  if (literal(d, "true", 4)) lua_pushboolean(d->L, 1);
  else if (literal(d, "false", 5)) lua_pushboolean(d->L, 0);
  else if (literal(d, "null", 4)) return 2;
  else return decode_error(d, "expected a value");
  return 1;
}

static int enter(decoder *d, int depth) {
  if (depth > MAX_DEPTH) return decode_error(d, "nested more than 1000 deep");
  if (!lua_checkstack(d->L, 4)) return decode_error(d, "Lua stack exhausted");
  d->at++;
  return 1;
}

/* The size of the container just entered: what count_elements counted, but no more than the rest of the
 * document could hold at `least` bytes per element (5 for a member, `"":0,`; 2 for an element, `0,`). Commas
 * alone (`{,,,`) would otherwise size a table for a document that is rejected at its second byte. */
static int size_hint(decoder *d, unsigned long least) {
  int n = d->sizes[d->opened++];
  unsigned long most = (d->end - d->at) / least;
  return (unsigned long)n > most ? (int)most : n;
}

/* After a member or an element: passes the container's end (1) or a comma (2); 0 on an error. */
static int after_element(decoder *d, unsigned char close, const char *expected) {
  unsigned char c = NEXT_BYTE(d);
  if (c != close && c != ',') return decode_error(d, expected);
  d->at++;
  return c == close ? 1 : 2;
}

/* An object that decoded to an empty table (`{}`, or members that were all null) gets the object marker, so
 * that it encodes again as `{}`, not `[]`. */
static void mark_if_empty(lua_State *L) {
  lua_pushnil(L);
  if (lua_next(L, -2)) {
    lua_settop(L, -3);
    return;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY);
  lua_setmetatable(L, -2);
}

static int decode_object(decoder *d, int depth) {
  lua_State *L = d->L;
  unsigned char c;
  int pushed, more, nulls = 0;
  if (!enter(d, depth)) return 0;
  lua_createtable(L, 0, size_hint(d, 5));
  c = NEXT_BYTE(d);
  if (c == '}') {
    d->at++;
    mark_if_empty(L);
    return 1;
  }
  for (;;) {
    if (c != '"') return decode_error(d, "expected a string key");
    if (!decode_string(d)) return 0;
    if (NEXT_BYTE(d) != ':') return decode_error(d, "expected ':'");
    d->at++;
    pushed = decode_value(d, depth);
    if (!pushed) return 0;
    if (pushed == 1) {
      lua_rawset(L, -3);
    } else {
      /* null: the key is absent, also when an earlier duplicate gave it a value (the last one wins) */
      nulls = 1;
      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (lua_type(L, -1) == LUA_TNIL) {
        lua_settop(L, -3);
      } else {
        lua_settop(L, -2);
        lua_pushnil(L);
        lua_rawset(L, -3);
      }
    }
    if ((more = after_element(d, '}', "expected ',' or '}'")) != 2) {
      if (more == 1 && nulls) mark_if_empty(L);
      return more;
    }
    c = NEXT_BYTE(d);
  }
}

static int decode_array(decoder *d, int depth) {
  lua_State *L = d->L;
  int i, pushed, more;
  if (!enter(d, depth)) return 0;
  lua_createtable(L, size_hint(d, 2), 0);
  if (NEXT_BYTE(d) == ']') {
    d->at++;
    return 1;
  }
  for (i = 1;; i++) {
    pushed = decode_value(d, depth);
    if (!pushed) return 0;
    if (pushed == 2) lua_pushlightuserdata(L, 0); /* mix.null keeps the array without holes */
    lua_rawseti(L, -2, i);
    if ((more = after_element(d, ']', "expected ',' or ']'")) != 2) return more;
  }
}

/* mix.json_decode(s) -> value | nil, err */
int json_decode(lua_State *L) {
  char small[1024];
  int sizes[256], count, pushed, type = lua_type(L, 1);
  decoder d;
  if (type != LUA_TSTRING) {
    snprintf(d.err, sizeof d.err, "json_decode expects a string, got %s", type_name(type));
    return fail(L, d.err);
  }
  lua_settop(L, 1);
  lua_pushnil(L); /* BUFFER_SLOT */
  d.L = L;
  d.s = (const unsigned char *)lua_tolstring(L, 1, &d.end);
  d.at = 0;
  d.opened = 0;
  d.str.L = L;
  d.str.p = small;
  d.str.cap = sizeof small;
  d.sizes = sizes;
  count = count_elements(&d, sizes, 256);
  if (count > 256) {
    d.sizes = (int *)lua_newuserdata(L, count * sizeof(int)); /* kept on the stack below the value */
    count_elements(&d, d.sizes, count);
  }
  pushed = decode_value(&d, 0);
  if (!pushed) return fail(L, d.err);
  if (NEXT_BYTE(&d) != 0 || d.at < d.end) return fail(L, (decode_error(&d, "expected the end of input"), d.err));
  if (pushed == 2) lua_pushnil(L);
  return 1;
}

/* mix.null: a light userdata holding NULL */
int json_null(lua_State *L) {
  lua_pushlightuserdata(L, 0);
  return 1;
}
