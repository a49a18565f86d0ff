#!/bin/sh
# Builds the ESP32-C3 firmware (riscv32imc-unknown-none-elf, release, locked)
# and prints its size. Run from anywhere; needs rustup and crates.io access
# (or a warm cargo cache). Honours CARGO_TARGET_DIR.
set -eu
cd "$(dirname "$0")"

rustup target add riscv32imc-unknown-none-elf
start=$(date +%s)
cargo build --release --locked
end=$(date +%s)
elf=${CARGO_TARGET_DIR:-target}/riscv32imc-unknown-none-elf/release/hearth-esp32c3-sensor
echo "firmware build: $((end - start)) s"

echo "firmware size ($elf):"
if command -v llvm-size >/dev/null 2>&1; then
    llvm-size "$elf"
    # The Berkeley figures count reserved address space (.rotext_dummy,
    # .rwdata_dummy, .stack); what is written to flash is the code, the
    # read-only data and the initial values of .data:
    llvm-size -A "$elf" | awk '
        $1 ~ /^\.(text|rodata|trap|rwtext|data|flash\.appdesc)/ { flash += $2 }
        $1 ~ /^\.(data|bss)/ { ram += $2 }
        END { printf "flash (code + rodata + data): %d bytes; static RAM (.data + .bss): %d bytes\n", flash, ram }'
elif command -v size >/dev/null 2>&1; then
    size "$elf"
else
    wc -c "$elf"
    if command -v readelf >/dev/null 2>&1; then
        readelf -S -W "$elf"
    fi
fi
