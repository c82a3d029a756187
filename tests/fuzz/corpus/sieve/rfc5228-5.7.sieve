if header :is "X-Caffeine" "" { keep; }
if header :contains :comparator "i;octet" "Subject" "MAKE MONEY FAST" {
   discard;
}
