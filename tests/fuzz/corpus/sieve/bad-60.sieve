if true {} else { if true {} }
elsif false {}