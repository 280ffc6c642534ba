"""The functions a fill or conversion may call on PostgreSQL (see migration_core/fills.py).

An allowlist, never a blocklist: a fill is evaluated by read-only commands (status, diff, preview),
so any function not named here, and every user-defined one, is refused. These are the built-ins of
the PostgreSQL docs chapters "Mathematical Functions", "String Functions", "Date/Time Functions",
"Conditional Expressions", "UUID Functions" and "Binary String Functions" that neither write nor
read anything but their arguments (the clock and gen_random_uuid are volatile but write nothing)."""

NAMES = frozenset("""
abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 mod pi power pow radians round
scale sign sqrt trunc width_bucket acos asin atan atan2 cos cot sin tan sinh cosh tanh
ascii bit_length btrim char_length character_length chr concat concat_ws format initcap left length lower
lpad ltrim md5 octet_length overlay position quote_ident quote_literal quote_nullable regexp_count
regexp_instr regexp_like regexp_match regexp_replace regexp_substr repeat replace reverse right rpad rtrim
split_part starts_with strpos substr substring to_hex translate trim upper unistr normalize
encode decode sha224 sha256 sha384 sha512 get_byte convert_from convert_to
age clock_timestamp current_date current_time current_timestamp date_bin date_part date_trunc extract
isfinite justify_days justify_hours justify_interval localtime localtimestamp make_date make_interval
make_time make_timestamp make_timestamptz now statement_timestamp transaction_timestamp to_char to_date
to_number to_timestamp timezone
coalesce nullif greatest least cast gen_random_uuid
""".split())
