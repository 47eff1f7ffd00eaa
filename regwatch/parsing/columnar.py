"""The columnar fast path for the Distribution registry's common lines.

Per-line Python cannot get near the speed of reading the file (design.md: ~37k lines/s
with naive pygrok, ~216k with a hand-tuned per-line parser before any normalising).
This module parses a whole block of lines at once inside DuckDB, whose regex engine is
RE2 in C++ and which uses both cores. DuckDB is used here as a vectorised regex and
string engine over an in-memory Arrow block, not as a store: nothing is persisted.

Only the shapes that make up nearly all of a registry's volume are handled here:
logrus text request lines (``authorized request``, ``response completed[ with error]``,
auth errors), other logrus text lines (noise), and the combined access log. Any line
the fast path is not certain about (unescaped inner quotes, keys out of order, escaped
newlines, percent-encoded paths, upload ``_state`` tokens, IPv6 or forwarded addresses,
composite durations, GC output, JSON and TTY forms, Harbor lines) is returned for the
per-line parser. Both paths must produce identical events; tests/unit/test_fastpath.py
checks that on sample_logs/ and synthetic logs.
"""

from __future__ import annotations


import duckdb
import pyarrow as pa

from regwatch.duck import run_sql

from regwatch.events import Action, AuthClass, Outcome, Tally

# logrus text: time, level, msg, then keys sorted by name
_CQ = r'("(?:[^"\\]|\\.)*"|[^ "]*)'
ACCESS_FAST = (
    r'^([0-9.]+) \S+ (\S+) \[([^\]]+)\] "([A-Z]+) (\S+) [^"]*" ([0-9]{3}) ([0-9]+|-) '
    r'"(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"$'
)
ACCESS_NAMES = ["ip", "user", "ts", "method", "uri", "status", "bytes", "ua"]
ROUTE = r"^/v2/(.+?)/(manifests|blobs/uploads|blobs|tags|referrers)(?:/([^?]*))?$"

# Lines that may hold a secret; only these go through redact() in Python. It must be a
# superset of what regwatch.redact masks (tests/unit/test_fastpath.py checks raw == redact).
SECRET_HINT = (
    r"(?i)(?:authorization|pass|pwd|secret|token|api[_-]?key|apikey|credential|signature|x-registry-auth)"
    r"[^=:\s\"']{0,24}[\"']?\s*[:=]|://[^/\s@]*@|eyJ"
)



def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _unq(col: str) -> str:
    """A captured value without its quotes, with \\" and \\\\ unescaped (as the per-line parser)."""
    bs = "\\"
    return (
        f"(CASE WHEN starts_with({col}, '\"') THEN replace(replace(substr({col}, 2, length({col}) - 2), "
        f"'{bs}\"', '\"'), '{bs}{bs}', '{bs}') ELSE {col} END)"
    )


def _unesc(col: str) -> str:
    """\\" and \\\\ unescaped in an already unquoted value."""
    bs = "\\"
    return f"replace(replace({col}, '{bs}\"', '\"'), '{bs}{bs}', '{bs}')"


def _names(names: list[str]) -> str:
    return "[" + ", ".join(_sql_str(n) for n in names) + "]"


_ACTIONS = f"""
CASE
  WHEN path IN ('/v2/', '/v2') THEN '{Action.BASE.value}'
  WHEN starts_with(path, '/v2/_catalog') THEN '{Action.CATALOG.value}'
  WHEN r.kind = '' THEN '{Action.OTHER.value}'
  WHEN r.kind = 'manifests' THEN CASE method
      WHEN 'GET' THEN '{Action.PULL.value}' WHEN 'HEAD' THEN '{Action.PULL_HEAD.value}'
      WHEN 'PUT' THEN '{Action.PUSH.value}' WHEN 'DELETE' THEN '{Action.DELETE.value}'
      ELSE '{Action.OTHER.value}' END
  WHEN r.kind = 'blobs/uploads' AND r.rest = '' THEN CASE
      WHEN method = 'POST' AND regexp_matches(query, '(^|&)mount=[^&]') THEN '{Action.BLOB_MOUNT.value}'
      WHEN method = 'POST' AND regexp_matches(query, '(^|&)digest=[^&]') THEN '{Action.BLOB_UPLOAD.value}'
      ELSE '{Action.BLOB_UPLOAD_START.value}' END
  WHEN r.kind = 'blobs/uploads' THEN CASE method
      WHEN 'PATCH' THEN '{Action.BLOB_UPLOAD_CHUNK.value}' WHEN 'PUT' THEN '{Action.BLOB_UPLOAD.value}'
      WHEN 'DELETE' THEN '{Action.BLOB_UPLOAD_CANCEL.value}' WHEN 'GET' THEN '{Action.BLOB_UPLOAD_STATUS.value}'
      ELSE '{Action.OTHER.value}' END
  WHEN r.kind = 'blobs' THEN CASE method
      WHEN 'GET' THEN '{Action.BLOB_PULL.value}' WHEN 'HEAD' THEN '{Action.BLOB_HEAD.value}'
      WHEN 'DELETE' THEN '{Action.BLOB_DELETE.value}' ELSE '{Action.OTHER.value}' END
  WHEN r.kind = 'tags' THEN '{Action.TAGS_LIST.value}'
  ELSE '{Action.REFERRERS.value}'
END"""


def _tally(action: str, status: str) -> str:
    return f"""
CASE
  WHEN {status} IS NULL THEN '{Tally.NONE.value}'
  WHEN {action} = '{Action.PULL.value}' THEN CASE WHEN {status} >= 200 AND {status} < 300 THEN '{Tally.PULL.value}'
       WHEN {status} >= 400 THEN '{Tally.PULL_FAILED.value}' ELSE '{Tally.NONE.value}' END
  WHEN {action} = '{Action.PUSH.value}' THEN CASE WHEN {status} < 400 THEN '{Tally.PUSH.value}' ELSE '{Tally.PUSH_FAILED.value}' END
  WHEN {action} = '{Action.DELETE.value}' THEN CASE WHEN {status} < 400 THEN '{Tally.DELETE.value}' ELSE '{Tally.DELETE_FAILED.value}' END
  WHEN {action} = '{Action.BLOB_PULL.value}' AND {status} IN (200, 206) THEN '{Tally.BLOB_PULL.value}'
  WHEN {action} = '{Action.BLOB_UPLOAD.value}' AND {status} < 400 THEN '{Tally.BLOB_UPLOAD.value}'
  ELSE '{Tally.NONE.value}'
END"""


def _outcome(status: str) -> str:
    return (
        f"CASE WHEN {status} IS NULL THEN '{Outcome.UNKNOWN.value}' WHEN {status} < 400 "
        f"THEN '{Outcome.SUCCESS.value}' ELSE '{Outcome.FAILURE.value}' END"
    )


_DUR = r"^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h)$"
_DUR_MS = (
    "TRY_CAST(regexp_extract(dur, '" + _DUR + "', 1) AS DOUBLE) * CASE regexp_extract(dur, '" + _DUR + "', 2) "
    "WHEN 'ns' THEN 1e-6 WHEN 'us' THEN 1e-3 WHEN 'µs' THEN 1e-3 WHEN 'μs' THEN 1e-3 WHEN 'ms' THEN 1.0 "
    "WHEN 's' THEN 1e3 WHEN 'm' THEN 6e4 ELSE 3.6e6 END"
)

# one SELECT per line family; each yields the per-line observation columns, or fast=false
LOGRUS_HEAD = r'^time="([^"]*)" level=([a-z]+) msg="((?:[^"\\]|\\.)*)"( [a-z_][a-z0-9_.]*=.*)?$'
# keys that logrus prints next to each other (sorted order, nothing else sorts between)
_REQ_RUN = (
    r" http\.request\.id=([^ \"]*) http\.request\.method=([A-Z]+) http\.request\.remoteaddr=" + _CQ
    + r" http\.request\.uri=" + _CQ + r" http\.request\.useragent=" + _CQ + r"(?: |$)"
)
_RESP_RUN = r" http\.response\.duration=([^ \"]*) http\.response\.status=([0-9]+) http\.response\.written=([0-9]+)(?: |$)"


def _single(k: str, alias: str) -> str:
    needle = " " + k + "="
    return (
        f"CASE WHEN strpos(tail, {_sql_str(needle)}) = 0 THEN '' ELSE regexp_extract("
        f"substr(tail, strpos(tail, {_sql_str(needle)}) + {len(needle)}), {_sql_str('^' + _CQ)}, 1) END AS {alias}"
    )


_LOGRUS_SQL = f"""
WITH x0 AS (
  SELECT seq, line, regexp_extract(line, {_sql_str(LOGRUS_HEAD)}, ['time', 'level', 'msg', 'tail']) AS h
  FROM lines WHERE starts_with(line, 'time="')
), x AS (
  SELECT seq, line, h.time AS time_s, h.level AS level, h.msg AS msg_raw, h.tail AS tail FROM x0
), x2 AS (
  SELECT seq, line, time_s, level, msg_raw, tail,
    regexp_extract(tail, {_sql_str(_REQ_RUN)}, ['id', 'method', 'raddr', 'uri', 'ua']) AS q,
    CASE WHEN contains(tail, ' http.response.') THEN
      regexp_extract(tail, {_sql_str(_RESP_RUN)}, ['dur', 'status', 'written']) END AS r,
    {_single('auth.user.name', 'user_c')},
    {_single('err.code', 'err_c')},
    {_single('vars.digest', 'vdigest_c')},
    {_single('vars.name', 'vname_c')},
    {_single('vars.reference', 'vref_c')}
  FROM x
), y AS (
  SELECT seq, line, time_s, level, {_unesc('msg_raw')} AS msg,
    NULLIF({_unq('user_c')}, '') AS user_v, NULLIF({_unq('err_c')}, '') AS err_code,
    NULLIF(q.id, '') AS request_id, NULLIF(q.method, '') AS method,
    NULLIF({_unq('q.raddr')}, '') AS raddr, NULLIF({_unq('q.uri')}, '') AS uri,
    NULLIF({_unq('q.ua')}, '') AS ua, NULLIF(r.dur, '') AS dur,
    NULLIF(r.status, '') AS status_s, NULLIF(r.written, '') AS written_s,
    NULLIF({_unq('vdigest_c')}, '') AS vdigest, NULLIF({_unq('vname_c')}, '') AS vname,
    NULLIF({_unq('vref_c')}, '') AS vref,
    time_s <> '' AS matched,
    ((q.method = '' AND contains(tail, ' http.request.'))
      OR (contains(tail, ' http.response.') AND (r.status = '' OR r.dur = '' OR r.written = ''))
      OR contains(tail, ' http.response.status=') <> (r.status IS NOT NULL AND r.status <> '')) AS lost_key
  FROM x2
)
SELECT * FROM y
"""


def fast_parse(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Parse a block. ``lines`` has columns seq (int64) and line (string).

    Returns (observations, slow) where ``slow`` holds the seq of every line the fast
    path left to the per-line parser, and ``observations`` has one row per handled line:
    kind ('app', 'access' or 'noise') and the Event columns the correlator needs.
    """
    if lines.num_rows > 4096:
        # several record batches let DuckDB scan the block on every core
        lines = pa.Table.from_batches(lines.to_batches(max_chunksize=max(4096, lines.num_rows // 16)))
    con.register("lines", lines)
    try:
        obs = run_sql(con, _OBS_SQL)
    finally:
        con.unregister("lines")
    # boolean masks, not expressions: an expression filter loads pyarrow.dataset (and
    # pandas with it), tens of MB the ingest does not otherwise need
    mask = pa.compute.and_kleene(obs["fast"], pa.compute.is_valid(obs["fast"]))  # null -> false
    fast = obs.filter(mask)
    slow = obs.filter(pa.compute.invert(mask)).select(["seq"])
    return fast.drop_columns(["fast"]), slow


_REQ_COLS = """
    split_part(uri, '?', 1) AS path,
    CASE WHEN contains(uri, '?') THEN substr(uri, strpos(uri, '?') + 1) ELSE '' END AS query
"""

_OBS_SQL = f"""
WITH app AS ({_LOGRUS_SQL}),
app2 AS (
  SELECT *, {_REQ_COLS},
    TRY_CAST(time_s AS TIMESTAMPTZ) AS ts,
    CASE WHEN msg IN ('authorized request') THEN 1
         WHEN msg IN ('response completed', 'response completed with error') THEN 2
         WHEN starts_with(msg, 'error authenticating user ') THEN 3
         WHEN starts_with(msg, 'error authorizing context') THEN 4
         ELSE 0 END AS mclass
  FROM app
),
app3 AS (
  SELECT *, regexp_extract(path, {_sql_str(ROUTE)}, ['name', 'kind', 'rest']) AS r FROM app2
),
app4 AS (
  SELECT *, {_ACTIONS} AS action,
    CASE WHEN mclass = 3 THEN regexp_extract(msg, '^error authenticating user \\\\?"(.*?)\\\\?": ', 1) END AS auth_user,
    CASE WHEN mclass = 3 THEN regexp_matches(msg, '^error authenticating user \\\\?"(.*?)\\\\?": ') END AS auth_user_ok
  FROM app3
),
app5 AS (
  SELECT *,
    CASE WHEN mclass IN (3, 4) THEN 401 ELSE TRY_CAST(status_s AS INTEGER) END AS status
  FROM app4
),
appf AS (
  SELECT seq,
    CASE WHEN mclass = 0 OR method IS NULL OR uri IS NULL THEN 'noise' ELSE 'app' END AS kind,
    (matched AND NOT lost_key AND ts IS NOT NULL
      AND ((length(line) - length(replace(line, '"', '')))
           - (length(line) - length(replace(line, '\\"', ''))) // 2) % 2 = 0
      AND NOT contains(line, '\\n') AND NOT contains(line, '\\t')
      AND NOT starts_with(msg, 'Deleting ')
      AND (method IS NULL OR uri IS NULL OR mclass = 0 OR (
           NOT contains(uri, '%')
           AND (raddr IS NULL OR regexp_matches(raddr, '^[0-9.]+(:[0-9]+)?$'))
           AND (dur IS NULL OR regexp_matches(dur, {_sql_str(_DUR)}))
           AND (mclass <> 3 OR auth_user_ok)
           AND NOT (action = '{Action.BLOB_UPLOAD.value}' AND contains(query, '_state='))
           AND (r.kind <> '' OR path IN ('/v2/', '/v2') OR starts_with(path, '/v2/_catalog') OR NOT starts_with(path, '/v2/'))
      ))) AS fast,
    ts AS timestamp, level, msg AS message, mclass,
    regexp_matches(line, {_sql_str(SECRET_HINT)}) AS secret_hint,
    action,
    {_outcome('status')} AS outcome,
    CASE WHEN mclass = 1 THEN '{Tally.NONE.value}' ELSE {_tally('action', 'status')} END AS tally,
    CASE WHEN mclass = 3 THEN (CASE WHEN auth_user <> '' THEN '{AuthClass.AUTH_FAILURE.value}' ELSE '{AuthClass.ANONYMOUS_DENIAL.value}' END)
         WHEN mclass = 4 AND (contains(msg, 'invalid token') OR contains(msg, 'malformed token')) THEN '{AuthClass.AUTH_FAILURE.value}'
         WHEN mclass = 4 THEN (CASE WHEN action = '{Action.BASE.value}' THEN '{AuthClass.CHALLENGE.value}' ELSE '{AuthClass.ANONYMOUS_DENIAL.value}' END)
         ELSE '{AuthClass.NONE.value}' END AS auth,
    coalesce(vname, NULLIF(r.name, '')) AS repository,
    coalesce(vref, CASE WHEN r.kind = 'manifests' THEN NULLIF(r.rest, '') END) AS reference,
    coalesce(vdigest, CASE WHEN r.kind = 'manifests' AND contains(r.rest, ':') THEN r.rest
                           WHEN r.kind IN ('blobs', 'referrers') THEN NULLIF(r.rest, '')
                           WHEN r.kind = 'blobs/uploads' AND r.rest = '' AND regexp_matches(query, '(^|&)mount=[^&]')
                                THEN NULLIF(regexp_extract(query, '(?:^|&)mount=([^&]*)', 1), '')
                           WHEN r.kind = 'blobs/uploads' THEN NULLIF(regexp_extract(query, '(?:^|&)digest=([^&]*)', 1), '')
                      END) AS digest,
    method, path, status,
    -- the event's bytes: none for `authorized request`, and for a completed upload the
    -- size in its _state (these rows never have one: such lines go to the per-line parser)
    CASE WHEN mclass = 1 OR ({_tally('action', 'status')}) = '{Tally.BLOB_UPLOAD.value}' THEN NULL
         ELSE TRY_CAST(written_s AS BIGINT) END AS bytes_w,
    CASE WHEN dur IS NULL THEN NULL ELSE {_DUR_MS} END AS duration_ms,
    CASE WHEN mclass = 3 THEN auth_user ELSE user_v END AS user_v,
    CASE WHEN raddr IS NULL THEN NULL ELSE split_part(raddr, ':', 1) END AS client_ip,
    ua AS user_agent, request_id, err_code AS error_code
  FROM app5
),
acc AS (
  SELECT seq, line, regexp_extract(line, {_sql_str(ACCESS_FAST)}, {_names(ACCESS_NAMES)}) AS m
  FROM lines WHERE NOT starts_with(line, 'time="')
),
acc2 AS (
  SELECT seq, line, m.ip <> '' AS matched, m.ip AS client_ip, m.user AS user_s,
    try_strptime(m.ts, '%d/%b/%Y:%H:%M:%S %z') AS ts,
    m.method AS method, m.uri AS uri, TRY_CAST(m.status AS INTEGER) AS status,
    TRY_CAST(NULLIF(m.bytes, '-') AS BIGINT) AS bytes_w,
    {_unq('m.ua')} AS ua_v
  FROM acc
),
acc3 AS (
  SELECT *, {_REQ_COLS} FROM acc2
),
acc4 AS (
  SELECT *, regexp_extract(path, {_sql_str(ROUTE)}, ['name', 'kind', 'rest']) AS r FROM acc3
),
acc5 AS (SELECT *, {_ACTIONS} AS action FROM acc4),
accf AS (
  SELECT seq, 'access' AS kind,
    (matched AND ts IS NOT NULL AND NOT contains(uri, '%')
     AND NOT contains(line, '\\n') AND NOT contains(line, '\\t')
     AND NOT (action = '{Action.BLOB_UPLOAD.value}' AND contains(query, '_state='))
     AND (r.kind <> '' OR path IN ('/v2/', '/v2') OR starts_with(path, '/v2/_catalog') OR NOT starts_with(path, '/v2/'))) AS fast,
    ts AS timestamp, NULL AS level, NULL AS message, -1 AS mclass,
    regexp_matches(line, {_sql_str(SECRET_HINT)}) AS secret_hint,
    action,
    {_outcome('status')} AS outcome,
    {_tally('action', 'status')} AS tally,
    CASE WHEN status = 401 THEN (CASE WHEN action = '{Action.BASE.value}' THEN '{AuthClass.CHALLENGE.value}' ELSE '{AuthClass.ANONYMOUS_DENIAL.value}' END)
         ELSE '{AuthClass.NONE.value}' END AS auth,
    NULLIF(r.name, '') AS repository,
    CASE WHEN r.kind = 'manifests' THEN NULLIF(r.rest, '') END AS reference,
    CASE WHEN r.kind = 'manifests' AND contains(r.rest, ':') THEN r.rest
         WHEN r.kind IN ('blobs', 'referrers') THEN NULLIF(r.rest, '')
         WHEN r.kind = 'blobs/uploads' AND r.rest = '' AND regexp_matches(query, '(^|&)mount=[^&]')
              THEN NULLIF(regexp_extract(query, '(?:^|&)mount=([^&]*)', 1), '')
         WHEN r.kind = 'blobs/uploads' THEN NULLIF(regexp_extract(query, '(?:^|&)digest=([^&]*)', 1), '')
    END AS digest,
    method, path, status,
    CASE WHEN ({_tally('action', 'status')}) = '{Tally.BLOB_UPLOAD.value}' THEN NULL ELSE bytes_w END AS bytes_w,
    CAST(NULL AS DOUBLE) AS duration_ms,
    CASE WHEN user_s IN ('-', '') THEN NULL ELSE user_s END AS user_v,
    client_ip, NULLIF(ua_v, '') AS user_agent, CAST(NULL AS VARCHAR) AS request_id, CAST(NULL AS VARCHAR) AS error_code
  FROM acc5
)
SELECT * FROM appf
UNION ALL BY NAME
SELECT * FROM accf
"""
