// A first-come, first-served limit on work in progress: `await slots.acquire()` resolves once fewer than `width`
// holders have a slot, with a `release()` that hands it to the next in line (calling it again does nothing). No DOM.

export class Slots {
  constructor(width) {
    this.width = width;
    this.holders = 0;
    this.line = [];
  }

  acquire() {
    return new Promise((resolve) => {
      this.line.push(resolve);
      this.admit();
    });
  }

  admit() {
    while (this.holders < this.width && this.line.length > 0) {
      this.holders += 1;
      let released = false;
      this.line.shift()(() => {
        if (released) return;
        released = true;
        this.holders -= 1;
        this.admit();
      });
    }
  }
}
