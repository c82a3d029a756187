keep;
elsif true {}