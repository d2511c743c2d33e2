#!/usr/bin/env bash
# Puts the real photographs scripts/photo_sets.py draws from into DIR (default /tmp/photo_src):
# scikit-image's brick, gravel, grass, coins and coffee photographs and GIMP's texture patterns,
# from Debian's python3-skimage and gimp-data packages (downloaded, unpacked, not installed).
# Also installs python3-numpy and python3-opencv, which photo_sets.py needs.
set -euo pipefail
DIR=${1:-/tmp/photo_src}
mkdir -p "$DIR"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
for p in python3-numpy python3-opencv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$p"
done
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download python3-skimage gimp-data >/dev/null 2>&1 &&
  dpkg -x python3-skimage_*.deb sk && dpkg -x gimp-data_*.deb gimp)
cp "$tmp"/sk/usr/lib/python3/dist-packages/skimage/data/{brick,gravel,grass,coins,coffee}.png "$DIR"/
pat="$tmp"/gimp/usr/share/gimp/2.0/patterns
cp "$pat"/Stone/{granite1,rock,stone33,slate}.pat "$pat"/Fabric/burlap.pat "$pat"/Wood/{walnut,corkboard,bark}.pat \
  "$pat"/Animal/leather.pat "$pat"/Paper/crinklepaper.pat "$DIR"/
rm -rf "$tmp"
echo "photographs in $DIR"
