if header :contains "subject" "money" { stop; }
keep;
