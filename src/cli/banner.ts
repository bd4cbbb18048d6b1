// The start-up banner, copied byte-for-byte from the seed transcript (trailing spaces included).
import { writeSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };

const ART = String.raw`
 _________________________________________________________________________________________________         
  ______________________________________________________________________________/\\\_______________      
   _____/\\\\\\\\_____/\\\\\_____/\\/\\\\\\____/\\/\\\\\\______/\\\\\__/\\\\\___\///___/\\\____/\\\_     
    ___/\\\//////____/\\\///\\\__\/\\\////\\\__\/\\\////\\\___/\\\///\\\\\///\\\__/\\\_\///\\\/\\\/__    
     __/\\\__________/\\\__\//\\\_\/\\\__\//\\\_\/\\\__\//\\\_\/\\\_\//\\\__\/\\\_\/\\\___\///\\\/____   
      _\//\\\________\//\\\__/\\\__\/\\\___\/\\\_\/\\\___\/\\\_\/\\\__\/\\\__\/\\\_\/\\\____/\\\/\\\___  
       __\///\\\\\\\\__\///\\\\\/___\/\\\___\/\\\_\/\\\___\/\\\_\/\\\__\/\\\__\/\\\_\/\\\__/\\\/\///\\\_ 
        ____\////////_____\/////_____\///____\///__\///____\///__\///___\///___\///__\///__\///____\///__
        
`;

export function versionLine(): string {
  return `connmix${pkg.version}, bun${Bun.version}, lua5.1+bitop, ${process.platform}, ${process.arch}`;
}

// A blank line, the art, the version line indented like the art's last row, a blank line.
export function bannerText(): string {
  return `${ART}        ${versionLine()}\n\n`;
}

// Synchronous so it lands before the first (buffered) log line.
export function printBanner(): void {
  writeSync(1, bannerText());
}
