#!/bin/sh
# Makes the appended-signature (modsig) fixtures with openssl; see README.md.
# Run from this directory. Keys are throwaway test keys.
set -eu
openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.crt -days 36500 \
	-subj "/CN=modsig test RSA signing key" -sha256 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.crt -days 36500 \
	-subj "/CN=modsig test ECDSA signing key" -sha256 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout untrusted.key -out untrusted.crt -days 36500 \
	-subj "/CN=modsig test untrusted key" -sha256 2>/dev/null
# The "module": the file without its appended signature.
printf 'ELF\0pretend kernel module\n' >module.bin
sign() { # out signer key extra-options...
	out=$1 crt=$2 key=$3
	shift 3
	openssl cms -sign -binary -outform DER -nocerts -md sha256 \
		-in module.bin -signer "$crt" -inkey "$key" -out "$out" "$@"
}
sign rsa-noattr.p7s rsa.crt rsa.key -noattr            # what sign-file writes
sign rsa-keyid.p7s rsa.crt rsa.key -noattr -keyid      # sign-file -k
sign ec-noattr.p7s ec.crt ec.key -noattr
sign rsa-pss.p7s rsa.crt rsa.key -noattr -keyopt rsa_padding_mode:pss
sign rsa-attrs.p7s rsa.crt rsa.key                     # with authenticated attributes
sign untrusted-noattr.p7s untrusted.crt untrusted.key -noattr
rm -f rsa.key ec.key untrusted.key
# The kernel's d-modsig of rsa-attrs.p7s: SHA-256 over the signer's
# authenticated attributes, their [0] tag (a0) made a SET (31).
line=$(openssl asn1parse -inform DER -in rsa-attrs.p7s | grep 'cont \[ 0 \]' | tail -n1)
off=$(echo "$line" | cut -d: -f1 | tr -d ' ')
hl=$(echo "$line" | sed 's/.*hl= *\([0-9]*\).*/\1/')
l=$(echo "$line" | sed 's/.*l= *\([0-9]*\) cons.*/\1/')
{ printf '\061'; dd if=rsa-attrs.p7s bs=1 skip=$((off + 1)) count=$((hl + l - 1)) 2>/dev/null; } |
	openssl dgst -sha256 -r | cut -d' ' -f1 >rsa-attrs.d-modsig
