"""indexes for investigations: exact keys, name and title fragments, phone digits, devices

``meetaudit investigate`` answers from indexes: an exact address through ``email_norm``, a
fragment of an email, name or title through trigram (``pg_trgm``) GIN indexes, a phone number's
last digits through its digits reversed, a device by its correlationId or type. Names are
compared folded (``meetaudit_fold``: accents removed, lower-cased; an immutable SQL function, so
it can be indexed, and it needs no ``unaccent`` extension). ``pg_trgm`` ships with PostgreSQL's
contrib package; a server without it (the embedded one) gets every other index, and fragments
are then found by scanning.

Revision ID: 0112
Revises: 0111
Create Date: 2026-12-02 04:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0112"
down_revision: str | Sequence[str] | None = "0111"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Letters with accents and their plain lower-case letter, one for one (translate()); letters
# that become two (ß, æ, œ, þ) are replaced first.
_ACCENTED = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜ"
    "ĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽ"
    "žſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮ"
    "ȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊ"
    "ṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẛ"
    "ẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữ"
    "ỰựỲỳỴỵỶỷỸỹøØđĐłŁıħĦŧŦƀɨ"
)
_PLAIN = (
    "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeeg"
    "ggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzz"
    "zsoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooo"
    "oooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnn"
    "noooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwys"
    "aaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuu"
    "uuyyyyyyyyooddllihhttbi"
)

FOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION meetaudit_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
SELECT lower(translate(
    replace(replace(replace(replace(replace(replace(replace(replace(
        value, 'ß', 'ss'), 'ẞ', 'ss'), 'Æ', 'ae'), 'æ', 'ae'), 'Œ', 'oe'), 'œ', 'oe'),
        'Þ', 'th'), 'þ', 'th'),
    '{_ACCENTED}', '{_PLAIN}'))
$$
"""

#: Indexes every server gets (btree).
INDEXES = {
    "ix_meetings_host_email_norm": "meetings (lower(trim(host_email)))",
    "ix_meetings_id_prefix": "meetings (meeting_id text_pattern_ops)",
    "ix_participant_devices_correlation_id": "participant_devices (correlation_id)",
    "ix_participant_devices_device_type": "participant_devices (lower(device_type))",
    "ix_participant_devices_phone_digits": (
        "participant_devices (reverse(regexp_replace(phone_number, '\\D', '', 'g'))"
        " text_pattern_ops) WHERE phone_number IS NOT NULL"
    ),
}

#: Trigram indexes, where the server has pg_trgm.
TRIGRAM_INDEXES = {
    "ix_participants_email_trgm": "participants USING gin (email_norm gin_trgm_ops)",
    "ix_participants_name_trgm": (
        "participants USING gin (meetaudit_fold(display_name) gin_trgm_ops)"
    ),
    "ix_meetings_title_trgm": "meetings USING gin (lower(title) gin_trgm_ops)",
    "ix_meetings_host_email_trgm": "meetings USING gin (lower(trim(host_email)) gin_trgm_ops)",
    "ix_meetings_host_name_trgm": (
        "meetings USING gin (meetaudit_fold(host_display_name) gin_trgm_ops)"
    ),
}


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(text(FOLD_FUNCTION))
    for name, target in INDEXES.items():
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
    available = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if available:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        for name, target in TRIGRAM_INDEXES.items():
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))


def downgrade() -> None:
    conn = op.get_bind()
    for name in (*TRIGRAM_INDEXES, *INDEXES):
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    # pg_trgm stays: other databases objects may use it, and it holds no data.
    conn.execute(text("DROP FUNCTION IF EXISTS meetaudit_fold(text)"))
