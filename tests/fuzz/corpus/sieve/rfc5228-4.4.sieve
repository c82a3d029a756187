if header :contains ["from"] ["idiot@example.com"] {
   discard;
}
