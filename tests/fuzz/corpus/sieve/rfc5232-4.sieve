require ["imap4flags", "relational", "comparator-i;ascii-numeric"];
if hasflag :contains "MyVar" "Junk" { discard; }
if hasflag :count "ge" :comparator "i;ascii-numeric" "2" { keep; }
if hasflag :contains "Junk" { removeflag "Junk"; }
