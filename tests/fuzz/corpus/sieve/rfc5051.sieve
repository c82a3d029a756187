require ["comparator-i;unicode-casemap", "relational",
         "comparator-i;ascii-numeric"];
if header :comparator "i;unicode-casemap" :contains "subject" "café" {
    keep;
}
if header :value "ge" :comparator "i;ascii-numeric" "x-score" "10" { discard; }
