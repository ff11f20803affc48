#!/usr/bin/env bash
# Trains the language identifier embedded in `latam` (crates/latam-langid/model/) from scratch:
#
#   scripts/langid/train.sh ../shared/data [WORK_DIR]
#
# 1. downloads the Debian packages that give English, French, Italian, German, Catalan,
#    Galician and more Portuguese text (pinned versions, from Debian's archive; unpacked, not installed);
# 2. builds train/valid/test splits with scripts/langid/build_dataset.py;
# 3. trains with `latam classifier train` (seed 1: the same data gives the same bytes);
# 4. scores the test split and the 20-100 character texts, and installs the model, its scores
#    and the dataset counts into crates/latam-langid/model/.
set -euo pipefail

shared=${1:?usage: scripts/langid/train.sh SHARED_DATA_DIR [WORK_DIR]}
work=${2:-target/langid}
repo=$(cd "$(dirname "$0")/../.." && pwd)
model_dir=$repo/crates/latam-langid/model

packages=(
  fortunes=1:1.99.1-7.3 fortunes-es=1.36 fortunes-br=20220821 fortunes-de=0.35-1
  fortunes-it=1.99-4.1 debian-reference-en=2.100 debian-reference-fr=2.100
  debian-reference-es=2.100 debian-reference-pt=2.100 debian-reference-it=2.100
  debian-reference-de=2.100 maint-guide-ca=1.2.53 maint-guide-fr=1.2.53 maint-guide-it=1.2.53
  maint-guide-de=1.2.53 installation-guide-amd64=20230508+deb12u1 manpages-fr=4.18.1-1
  coreutils=9.1-1 tar=1.34+dfsg-1.2+deb12u1 bash=5.2.15-2+b13 grep=3.8-5 debian-faq-pt=11.1
  dpkg=1.21.23 apt=2.6.2
)

mkdir -p "$work/deb" "$work/packages"
(
  cd "$work/deb"
  for spec in "${packages[@]}"; do
    name=${spec%%=*}
    ls "${name}"_*.deb >/dev/null 2>&1 || apt-get download "$spec"
  done
)
for deb in "$work"/deb/*.deb; do
  name=$(basename "$deb"); name=${name%%_*}
  [ -d "$work/packages/$name" ] || { mkdir -p "$work/packages/$name"; dpkg -x "$deb" "$work/packages/$name"; }
done

python3 "$repo/scripts/langid/build_dataset.py" "$shared" "$work/packages" "$work/data"

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
latam=$repo/target/release/latam
"$latam" classifier train --input "$work/data/train.jsonl" --valid "$work/data/valid.jsonl" \
  --output "$work/langid.lcm" --epochs 10 --lr 0.5 --minn 2 --maxn 5 --seed 1 \
  --card "$(cat "$repo/scripts/langid/card.txt")"
{
  echo "## Test split (held-out sentences)"
  echo
  "$latam" classifier eval --model "$work/langid.lcm" --input "$work/data/test.jsonl"
  echo
  echo "## Spanish, Portuguese, English and French texts of 20-100 characters"
  echo
  "$latam" classifier eval --model "$work/langid.lcm" --input "$work/data/short.jsonl"
} > "$work/eval.md"

cp "$work/langid.lcm" "$model_dir/langid.lcm"
cp "$work/eval.md" "$model_dir/eval.md"
cp "$work/data/dataset.json" "$model_dir/dataset.json"
echo "model: $model_dir/langid.lcm ($(stat -c %s "$model_dir/langid.lcm") bytes); scores: $model_dir/eval.md"
