# Sourced by scripts/setup.sh and scripts/quickstart.sh.
# The default parallel corpus (`attend corpus debian`, docs/cli.md) is read from the gettext
# catalogs under /usr/share/locale/<lang>/LC_MESSAGES. These packages carry German (and many
# other languages') catalogs. Chosen for many messages per MB and no dependencies; the first
# group is often present already, the second is installed for it (scripts/setup.sh). A machine's
# image may carry more catalogs (e.g. PostgreSQL's): the quickstart reads only these packages'
# catalogs (corpus_locale_dir below), so every fresh Debian 12 machine builds the same corpus.
CORPUS_PACKAGES=(
  iso-codes libc-l10n coreutils binutils-common git gnupg-l10n krb5-locales xkb-data
  libglib2.0-data libgtk-3-common libgtk2.0-common libgphoto2-l10n libexif12
  gcc-12-locales util-linux-locales e2fsprogs-l10n xfsprogs cryptsetup-bin libgpg-error-l10n
  gnumeric-common gnucash-common evolution-common evolution-data-server-common vlc-l10n
  pidgin-data hexchat-common filezilla-common lynx-common mc-data aptitude-common libsane-common
)

# corpus_locale_dir DIR LANG: DIR/LANG/LC_MESSAGES holds links to the LANG catalogs of exactly
# CORPUS_PACKAGES (as dpkg lists their files), for `attend corpus debian --locale-dir DIR`.
corpus_locale_dir() {
  local dir="$1" lang="$2" p
  rm -rf "$dir/$lang"
  mkdir -p "$dir/$lang/LC_MESSAGES"
  for p in "${CORPUS_PACKAGES[@]}"; do
    dpkg -L "$p" 2>/dev/null | grep -E "^/usr/share/locale/$lang/LC_MESSAGES/[^/]+\.mo\$" || true
  done | sort -u | while read -r f; do
    if [ -e "$f" ]; then ln -sf "$f" "$dir/$lang/LC_MESSAGES/"; fi
  done
}
