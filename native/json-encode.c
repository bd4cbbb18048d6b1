/* json_encode and its number formatting: part of json.c (which includes it after the declarations). */

/* ---- numbers, written like JavaScript's Number#toString (ECMAScript Number::toString) ---- */

/* The digits of a (> 0) rounded to k significant digits; sets *x (a ~ d.ddd * 10^x). */
static void round_digits(double a, int k, char *digits, int *x) {
  char e[40];
  int i, j = 0, n = 0, negative;
  snprintf(e, sizeof e, "%.*e", k - 1, a); /* d[.ddd]e(+|-)xx */
  for (i = 0; e[i] != 'e'; i++) if (e[i] != '.') digits[j++] = e[i];
  negative = e[i + 1] == '-';
  for (i += 2; e[i]; i++) n = n * 10 + (e[i] - '0');
  *x = negative ? -n : n;
}

/* k digits with exponent x, read back as a double. */
static double digits_value(const char *digits, int k, int x) {
  char e[40];
  int len = 0;
  e[len++] = digits[0];
  e[len++] = '.';
  memcpy(e + len, digits + 1, k - 1);
  len += k - 1;
  snprintf(e + len, sizeof e - len, "e%d", x);
  return strtod(e, 0);
}

/* Moves k digits one unit in their last place, up or down: the other k-digit number beside a value. */
static void step_digits(char *digits, int k, int *x, int up) {
  int i = k - 1;
  if (up) {
    while (i >= 0 && digits[i] == '9') digits[i--] = '0';
    if (i >= 0) digits[i]++;
    else digits[0] = '1', (*x)++; /* 9.99 -> 1.00 * 10^(x+1) */
    return;
  }
  while (digits[i] == '0') digits[i--] = '9';
  digits[i]--;
  if (digits[0] == '0') { /* 1.00 -> 9.99 * 10^(x-1) */
    for (i = 0; i < k; i++) digits[i] = '9';
    (*x)--;
  }
}

/* The decimal digits of m into digits; returns their count. */
static int integer_digits(unsigned long long m, char *digits) {
  char reversed[20];
  int n = 0, k = 0;
  do {
    reversed[n++] = '0' + m % 10;
    m /= 10;
  } while (m);
  while (n) digits[k++] = reversed[--n];
  return k;
}

/* The common case without printf: a (normal, > 0) is m / 10^j for an integer m below 10^15 and some j <= 22,
 * checked exactly (m and 10^j are exact doubles, so m / 10^j rounds as reading the decimal does). The
 * smallest such j gives the fewest digits, and up to 15 digits they are the only ones that read back.
 * Returns the digit count, 0 when a needs more digits or a larger j. */
static int short_decimal(double a, char *digits, int *x) {
  static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                  1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
  double scaled, m;
  int j, k;
  for (j = 1; j <= 22; j++) {
    scaled = a * pow10[j];
    if (scaled >= 1e15) return 0;
    m = (double)(long long)(scaled + 0.5);
    if (m / pow10[j] == a) {
      k = integer_digits((unsigned long long)m, digits);
      *x = k - 1 - j;
      return k;
    }
  }
  return 0;
}

/* The fewest digits that read back as a (> 0), the closest to a when several do; returns their count. Both
 * k-digit numbers beside a are tried: where the spacing of doubles changes, the closer may not read back.
 * For a normal double the closest 15 digits (less their trailing zeros) are the shortest when anything up to
 * 15 digits reads back. */
static int shortest_digits(double a, char *digits, int *x) {
  int normal = a >= 2.2250738585072014e-308, k = normal ? short_decimal(a, digits, x) : 0;
  double back;
  if (k) return k;
  for (k = normal ? 15 : 1; k < 17; k++) {
    round_digits(a, k, digits, x);
    back = digits_value(digits, k, *x);
    if (back == a) return k;
    if (normal && k == 15) continue;
    step_digits(digits, k, x, back < a);
    if (digits_value(digits, k, *x) == a) return k;
  }
  round_digits(a, 17, digits, x);
  return 17;
}

/* Writes finite v into out (32 bytes); returns the length. Integers below 2^53 print as such; others get
 * shortest_digits, laid out without an exponent from 1e-6 up to 1e21. */
static int format_number(char *out, double v) {
  char digits[20];
  int k, n, len = 0;
  if (v > -SAFE_INTEGER - 1 && v < SAFE_INTEGER + 1 && (double)(long long)v == v) {
    if (v < 0) out[len++] = '-';
    return len + integer_digits(v < 0 ? -(long long)v : (long long)v, out + len); /* -0 too: "0" */
  }
  if (v < 0) {
    out[len++] = '-';
    v = -v;
  }
  k = shortest_digits(v, digits, &n);
  while (k > 1 && digits[k - 1] == '0') k--;
  n++; /* v = 0.digits * 10^n */
  if (k <= n && n <= 21) {
    memcpy(out + len, digits, k);
    for (len += k; k < n; k++) out[len++] = '0';
  } else if (0 < n && n <= 21) {
    memcpy(out + len, digits, n);
    len += n;
    out[len++] = '.';
    memcpy(out + len, digits + n, k - n);
    len += k - n;
  } else if (-6 < n && n <= 0) {
    out[len++] = '0';
    out[len++] = '.';
    for (; n < 0; n++) out[len++] = '0';
    memcpy(out + len, digits, k);
    len += k;
  } else {
    out[len++] = digits[0];
    if (k > 1) {
      out[len++] = '.';
      memcpy(out + len, digits + 1, k - 1);
      len += k - 1;
    }
    len += snprintf(out + len, 8, "e%c%d", n > 0 ? '+' : '-', n > 0 ? n - 1 : 1 - n);
  }
  return len;
}

/* ---- json_encode ---- */

typedef struct { buffer out; char err[120]; } encoder;

static int encode_error(encoder *s, const char *what, const char *detail) {
  snprintf(s->err, sizeof s->err, "json_encode: %s%s", what, detail);
  return 0;
}

static int write_number(encoder *s, double v) {
  if (v != v || v - v != 0) {
    return encode_error(s, v != v ? "cannot encode NaN" : v > 0 ? "cannot encode Infinity" : "cannot encode -Infinity",
                        " (NaN and infinities have no JSON form)");
  }
  s->out.n += format_number(reserve(&s->out, 32), v);
  return 1;
}

/* Quotes the string at idx; only '"', '\\' and bytes below 0x20 are escaped. */
static void write_string(encoder *s, int idx) {
  static const char hex[] = "0123456789abcdef";
  unsigned long n, i, run;
  const unsigned char *p = (const unsigned char *)lua_tolstring(s->out.L, idx, &n);
  char *o = reserve(&s->out, n + 2);
  for (run = 0; !string_stop[p[run]]; run++) {}
  if (run == n) { /* nothing to escape: the common case, in one copy */
    o[0] = '"';
    memcpy(o + 1, p, n);
    o[n + 1] = '"';
    s->out.n += n + 2;
    return;
  }
  PUT1(&s->out, '"');
  for (i = 0;; i = run + 1) {
    unsigned char c;
    for (run = i; !string_stop[p[run]]; run++) {}
    put(&s->out, (const char *)p + i, run - i);
    if (run == n) break;
    c = p[run];
    o = reserve(&s->out, 6);
    o[0] = '\\';
    switch (c) {
      case '"': case '\\': o[1] = c; break;
      case '\b': o[1] = 'b'; break;
      case '\f': o[1] = 'f'; break;
      case '\n': o[1] = 'n'; break;
      case '\r': o[1] = 'r'; break;
      case '\t': o[1] = 't'; break;
      default:
        memcpy(o + 1, "u00", 3);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        s->out.n += 4;
    }
    s->out.n += 2;
  }
  PUT1(&s->out, '"');
}

static int write_key(encoder *s, int idx) {
  int type = lua_type(s->out.L, idx);
  if (type == LUA_TSTRING) {
    write_string(s, idx);
    return 1;
  }
  if (type != LUA_TNUMBER) return encode_error(s, "cannot encode a table key of type ", type_name(type));
  PUT1(&s->out, '"');
  if (!write_number(s, lua_tonumber(s->out.L, idx))) return 0;
  PUT1(&s->out, '"');
  return 1;
}

static int encode_table(encoder *s, int idx, int depth);

/* Encodes the value at idx, which is the top of the stack. */
static int encode_value(encoder *s, int idx, int depth) {
  lua_State *L = s->out.L;
  int type = lua_type(L, idx);
  switch (type) {
    case LUA_TSTRING: write_string(s, idx); return 1;
    case LUA_TNUMBER: return write_number(s, lua_tonumber(L, idx));
    case LUA_TTABLE: return encode_table(s, idx, depth + 1);
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put(&s->out, "true", 4);
      else put(&s->out, "false", 5);
      return 1;
    case LUA_TNIL: put(&s->out, "null", 4); return 1;
    case LUA_TLIGHTUSERDATA:
      if (!lua_touserdata(L, idx)) { /* mix.null */
        put(&s->out, "null", 4);
        return 1;
      }
  }
  return encode_error(s, "cannot encode a value of type ", type_name(type));
}

/* Whether the table at idx carries the JSON-object marker (mix.json_object, or decoded from `{}`). */
static int is_object(lua_State *L, int idx) {
  int same;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY);
  same = lua_rawequal(L, -1, -2);
  lua_settop(L, idx);
  return same;
}

/* The members of the table at idx as an object, keys as strings; the first key is pushed already when
 * `started`, otherwise the walk starts from nil. */
static int encode_members(encoder *s, int idx, int depth, int started) {
  lua_State *L = s->out.L;
  int first = 1;
  PUT1(&s->out, '{');
  if (!started) lua_pushnil(L);
  while (started || lua_next(L, idx)) {
    started = 0;
    if (!first) PUT1(&s->out, ',');
    first = 0;
    if (!write_key(s, idx + 1)) return 0;
    PUT1(&s->out, ':');
    if (!encode_value(s, idx + 2, depth)) return 0;
    lua_settop(L, idx + 1);
  }
  PUT1(&s->out, '}');
  return 1;
}

/* Tables the single pass could not classify. Only positive integer keys, with at most as many holes as
 * values (or a largest key up to 10), make an array with null in the holes; anything else an object with
 * number keys written as strings. */
static int encode_mixed(encoder *s, int idx, int depth) {
  lua_State *L = s->out.L;
  double count = 0, max = 0, key;
  int array = 1, i;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    key = lua_type(L, idx + 1) == LUA_TNUMBER ? lua_tonumber(L, idx + 1) : 0;
    if (key >= 1 && key < 4503599627370496.0 && (double)(long long)key == key) {
      if (key > max) max = key;
    } else {
      array = 0;
    }
    lua_settop(L, idx + 1);
  }
  if (!array || (max > 10 && max > 2 * count)) return encode_members(s, idx, depth, 0);
  PUT1(&s->out, '[');
  for (i = 1; i <= (int)max; i++) {
    if (i > 1) PUT1(&s->out, ',');
    lua_rawgeti(L, idx, i);
    if (!encode_value(s, idx + 1, depth)) return 0;
    lua_settop(L, idx);
  }
  PUT1(&s->out, ']');
  return 1;
}

/* Whether the keys after the one at idx + 1 (which is `key`) come as key + 1, key + 2, ... to the end of the
 * table at idx. Leaves the stack as it found it (key and value at idx + 1, idx + 2). */
static int rest_is_sequence(lua_State *L, int idx, double key) {
  lua_pushvalue(L, idx + 1);
  while (lua_next(L, idx)) {
    if (lua_type(L, idx + 3) != LUA_TNUMBER || lua_tonumber(L, idx + 3) != ++key) {
      lua_settop(L, idx + 2);
      return 0;
    }
    lua_settop(L, idx + 3);
  }
  return 1;
}

/* One pass over the table with lua_next, guessing its kind from the first key: keys coming as 1, 2, 3, ...
 * make an array; a first key that is a string (or the object marker) an object. Anything else (a hole, keys
 * out of order, a first key that is another number) is rewound and handled by encode_mixed. The rest of the
 * keys are checked before the first table element is written: rewinding after tables would write them again,
 * at every level of nesting (2^depth). */
static int encode_table(encoder *s, int idx, int depth) {
  lua_State *L = s->out.L;
  unsigned long start = s->out.n;
  double expected = 1;
  int object, first_type, checked = 0;
  if (depth > MAX_DEPTH) return encode_error(s, "tables nested more than 1000 deep (a cycle?)", "");
  if (!lua_checkstack(L, 4)) return encode_error(s, "Lua stack exhausted", "");
  object = is_object(L, idx);
  lua_pushnil(L);
  if (!lua_next(L, idx)) {
    put(&s->out, object ? "{}" : "[]", 2);
    return 1;
  }
  first_type = lua_type(L, idx + 1);
  if (!object && first_type == LUA_TNUMBER && lua_tonumber(L, idx + 1) == 1) {
    PUT1(&s->out, '[');
    do {
      int fits = expected == 1 || (lua_type(L, idx + 1) == LUA_TNUMBER && lua_tonumber(L, idx + 1) == expected);
      if (fits && !checked && lua_type(L, idx + 2) == LUA_TTABLE) fits = checked = rest_is_sequence(L, idx, expected);
      if (!fits) {
        lua_settop(L, idx);
        s->out.n = start;
        return encode_mixed(s, idx, depth);
      }
      if (expected > 1) PUT1(&s->out, ',');
      if (!encode_value(s, idx + 2, depth)) return 0;
      lua_settop(L, idx + 1);
      expected++;
    } while (lua_next(L, idx));
    PUT1(&s->out, ']');
    return 1;
  }
  if (!object && first_type != LUA_TSTRING) {
    lua_settop(L, idx);
    return encode_mixed(s, idx, depth);
  }
  return encode_members(s, idx, depth, 1);
}

/* mix.json_encode(value) -> string | nil, err */
int json_encode(lua_State *L) {
  char small[4096];
  encoder s;
  s.out.L = L;
  s.out.p = small;
  s.out.n = 0;
  s.out.cap = sizeof small;
  lua_settop(L, 1);
  lua_pushnil(L);      /* BUFFER_SLOT */
  lua_pushvalue(L, 1); /* the value, at the top */
  if (!encode_value(&s, 3, 0)) return fail(L, s.err);
  lua_pushlstring(L, s.out.p, s.out.n);
  return 1;
}
